import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { PriceUpdateEvent } from '@repo/events';
import { EVENT_CHANNELS } from '../src/broker-contract.ts';
import { PriceChannel } from '../src/streams/price-channel.ts';
import { channelDeps, FakeSink, routeOf } from './stream-fakes.ts';
import { metricValue } from './metric-value.ts';

const at = (second: number) => new Date(Date.UTC(2026, 0, 1, 0, 0, second)).toISOString();
const tick = (symbol: string, price: string, second: number): PriceUpdateEvent => ({
  symbol,
  price,
  timestamp: at(second),
});

/** A price channel whose stored-price reads the test can hold, and a way to publish ticks into it. */
function setup(stored: PriceUpdateEvent[] = [], symbols = ['SOL', 'BTC']) {
  const deps = channelDeps();
  let reads = 0;
  let gate: Promise<void> | null = null;
  let open = () => {};
  const channel = new PriceChannel({
    ...deps,
    symbols,
    readStored: async (wanted) => {
      reads += 1;
      if (gate) await gate;
      return stored.filter((event) => wanted.includes(event.symbol));
    },
  });
  const publish = (event: PriceUpdateEvent) => routeOf(channel, EVENT_CHANNELS.price)(JSON.stringify(event));
  /** Opens a stream on a fresh sink; the reply is written to the sink, so the order is visible. */
  const subscribe = (sink = new FakeSink()) => {
    const stream = channel.subscribe(sink);
    const opened = stream.open({ type: 'subscribe', channel: 'prices' }, (m) => sink.send(m));
    return { sink, stream, opened };
  };
  return {
    deps,
    publish,
    subscribe,
    reads: () => reads,
    hold: () => {
      gate = new Promise((resolve) => (open = resolve));
    },
    release: () => {
      gate = null;
      open();
    },
  };
}

describe('price stream', () => {
  it('answers subscribed, then per symbol the newer of the stored and the last live price, then live', async () => {
    const { publish, subscribe } = setup([tick('SOL', '1', 1), tick('BTC', '50000', 9)]);
    publish(tick('SOL', '2', 5)); // newer than the stored SOL
    publish(tick('BTC', '40000', 3)); // older than the stored BTC
    const { sink, opened } = subscribe();
    await opened;
    publish(tick('SOL', '3', 10));
    assert.deepEqual(sink.messages(), [
      { type: 'subscribed', channel: 'prices' },
      { type: 'price', ...tick('SOL', '2', 5) },
      { type: 'price', ...tick('BTC', '50000', 9) },
      { type: 'price', ...tick('SOL', '3', 10) },
    ]);
  });

  it('holds ticks that arrive during the snapshot read; the latest of a symbol replaces its snapshot', async () => {
    const fx = setup([tick('SOL', '1', 1), tick('BTC', '2', 1)]);
    fx.hold();
    const { sink, opened } = fx.subscribe();
    fx.publish(tick('SOL', '10', 5));
    fx.publish(tick('BTC', '20', 6));
    fx.publish(tick('SOL', '11', 7));
    assert.equal(sink.frames.length, 0, 'nothing before the reply');
    fx.release();
    await opened;
    assert.deepEqual(sink.messages(), [
      { type: 'subscribed', channel: 'prices' },
      { type: 'price', ...tick('BTC', '20', 6) },
      { type: 'price', ...tick('SOL', '11', 7) },
    ]);
  });

  it('keeps only the latest tick per symbol while the socket is slow', async () => {
    const { publish, subscribe } = setup();
    const { sink, opened } = subscribe();
    await opened;
    sink.slow = true;
    publish(tick('SOL', '1', 1));
    publish(tick('BTC', '2', 2));
    publish(tick('SOL', '3', 3));
    sink.drain();
    assert.deepEqual(
      sink.ofType('price').map((m) => [m.symbol, m.price]),
      [
        ['BTC', '2'],
        ['SOL', '3'],
      ],
    );
  });

  it('shares one stored-price read among subscriptions that start together', async () => {
    const fx = setup([tick('SOL', '7', 1)]);
    fx.hold();
    const subscribers = [fx.subscribe(), fx.subscribe(), fx.subscribe()];
    fx.release();
    await Promise.all(subscribers.map((s) => s.opened));
    assert.equal(fx.reads(), 1);
    for (const { sink } of subscribers)
      assert.deepEqual(sink.ofType('price'), [{ type: 'price', ...tick('SOL', '7', 1) }]);
  });

  it('falls back to the live ticks when the store cannot be read', async () => {
    const deps = channelDeps();
    const channel = new PriceChannel({
      ...deps,
      symbols: ['SOL'],
      readStored: () => Promise.reject(new Error('down')),
    });
    routeOf(channel, EVENT_CHANNELS.price)(JSON.stringify(tick('SOL', '5', 1)));
    const sink = new FakeSink();
    await channel.subscribe(sink).open({ type: 'subscribe', channel: 'prices' }, (m) => sink.send(m));
    assert.deepEqual(sink.messages(), [
      { type: 'subscribed', channel: 'prices' },
      { type: 'price', ...tick('SOL', '5', 1) },
    ]);
  });

  it('once closed, gets nothing more and leaves the index', async () => {
    const fx = setup();
    const { sink, stream, opened } = fx.subscribe();
    await opened;
    assert.equal(await metricValue(fx.deps.registry, 'tradewire_ws_subscriptions', { channel: 'prices' }), 1);
    stream.close();
    fx.publish(tick('SOL', '1', 1));
    assert.deepEqual(sink.ofType('price'), []);
    assert.equal(await metricValue(fx.deps.registry, 'tradewire_ws_subscriptions', { channel: 'prices' }), 0);
  });

  it('drops a malformed tick for everyone and counts it', async () => {
    const fx = setup();
    const { sink, opened } = fx.subscribe();
    await opened;
    fx.publish({ symbol: 'sol!', price: '-1', timestamp: 'yesterday' });
    fx.publish(tick('SOL', '1', 1));
    assert.deepEqual(
      sink.ofType('price').map((m) => m.price),
      ['1'],
    );
    assert.equal(await metricValue(fx.deps.registry, 'tradewire_ws_events_dropped_total', { reason: 'malformed' }), 1);
  });
});
