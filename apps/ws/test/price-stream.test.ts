import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { PriceUpdateEvent } from '@repo/events';
import { EVENT_CHANNELS } from '../src/broker-contract.ts';
import { PriceChannel } from '../src/streams/price-channel.ts';
import { channelDeps, FakeOwner, FakeSink, routeOf } from './stream-fakes.ts';
import { metricValue } from './metric-value.ts';

const at = (second: number) => new Date(Date.UTC(2026, 0, 1, 0, 0, second)).toISOString();
const tick = (symbol: string, price: string, second: number): PriceUpdateEvent => ({
  symbol,
  price,
  timestamp: at(second),
});

const request = (symbols?: string[]) =>
  symbols === undefined
    ? ({ type: 'subscribe', channel: 'prices' } as const)
    : ({ type: 'subscribe', channel: 'prices', symbols } as const);

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
  const subscribe = (sink = new FakeSink(), symbols?: string[]) => {
    const owner = new FakeOwner();
    const stream = channel.subscribe(sink, owner);
    const opened = Promise.resolve(stream.open(request(symbols), (m) => sink.send(m)));
    return { sink, owner, stream, opened };
  };
  return {
    deps,
    channel,
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
    await channel.subscribe(sink, new FakeOwner()).open(request(), (m) => sink.send(m));
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

  describe('a subset of symbols', () => {
    const SYMBOLS = ['SOL', 'BTC', 'ETH'];
    const stored = [tick('SOL', '1', 1), tick('BTC', '2', 1), tick('ETH', '3', 1)];
    const summary = (sink: FakeSink) =>
      sink.messages().map((m) => (m.type === 'price' ? `${m.symbol} ${m.price}` : JSON.stringify(m)));

    it('gets only its symbols: in the snapshot, and live', async () => {
      const fx = setup(stored, SYMBOLS);
      const { sink, opened } = fx.subscribe(undefined, ['BTC', 'ETH']);
      await opened;
      for (const symbol of SYMBOLS) fx.publish(tick(symbol, '10', 5));
      assert.deepEqual(summary(sink), [
        '{"type":"subscribed","channel":"prices","symbols":["BTC","ETH"]}',
        'BTC 2',
        'ETH 3',
        'BTC 10',
        'ETH 10',
      ]);
    });

    it('a tick walks only the streams that asked for its symbol, and those that take every symbol', async () => {
      const fx = setup([], SYMBOLS);
      const visits = new Map<string, number>();
      const watch = async (label: string, symbols?: string[]) => {
        const { stream, opened } = fx.subscribe(undefined, symbols);
        const deliver = stream.deliver.bind(stream);
        stream.deliver = (t) => {
          visits.set(label, (visits.get(label) ?? 0) + 1);
          return deliver(t);
        };
        await opened;
      };
      await Promise.all([
        ...Array.from({ length: 50 }, (_, i) => watch(`btc${i}`, ['BTC'])),
        watch('sol', ['SOL']),
        watch('sol+eth', ['ETH', 'SOL']),
        watch('all'),
      ]);
      fx.publish(tick('SOL', '1', 1));
      assert.deepEqual(Object.fromEntries(visits), { sol: 1, 'sol+eth': 1, all: 1 });
    });

    it('refuses an unknown symbol: a new subscription does not start, nothing is written but the error', async () => {
      const fx = setup(stored, SYMBOLS);
      const { sink, owner, stream, opened } = fx.subscribe(undefined, ['BTC', 'DOGE']);
      await opened;
      const [error] = sink.messages();
      assert.equal(error?.type === 'error' && error.code, 'unknown_symbol');
      assert.match(error?.type === 'error' ? error.message : '', /DOGE/);
      assert.deepEqual(owner.endedStreams, [stream], 'the session forgets the stream');
      fx.publish(tick('BTC', '9', 9));
      assert.equal(sink.messages().length, 1);
      assert.equal(await metricValue(fx.deps.registry, 'tradewire_ws_subscriptions', { channel: 'prices' }), 0);
    });

    it('refuses an unknown symbol on a live subscription: its set stays as it was', async () => {
      const fx = setup(stored, SYMBOLS);
      const { sink, owner, stream, opened } = fx.subscribe(undefined, ['BTC']);
      await opened;
      await stream.open(request(['ETH', 'XRP']), (m) => sink.send(m));
      fx.publish(tick('BTC', '9', 9));
      fx.publish(tick('ETH', '9', 9));
      assert.deepEqual(summary(sink).slice(2), [
        '{"type":"error","code":"unknown_symbol","message":"unknown symbol XRP; served: SOL, BTC, ETH"}',
        'BTC 9',
      ]);
      assert.deepEqual(owner.endedStreams, []);
    });

    it('a narrower subscribe answers at once: no snapshot again, dropped symbols stop, kept ones go on', async () => {
      const fx = setup(stored, SYMBOLS);
      const { sink, stream, opened } = fx.subscribe(undefined, ['SOL', 'BTC']);
      await opened;
      sink.frames.length = 0;
      fx.hold(); // a snapshot read would never finish
      await stream.open(request(['BTC']), (m) => sink.send(m));
      fx.publish(tick('SOL', '5', 5));
      fx.publish(tick('BTC', '6', 6));
      assert.deepEqual(summary(sink), ['{"type":"subscribed","channel":"prices","symbols":["BTC"]}', 'BTC 6']);
    });

    it('a wider subscribe snapshots only the added symbols; kept ones stay live during the read', async () => {
      const fx = setup(stored, SYMBOLS);
      const { sink, stream, opened } = fx.subscribe(undefined, ['BTC']);
      await opened;
      sink.frames.length = 0;
      fx.hold();
      const reopened = stream.open(request(['BTC', 'ETH', 'SOL']), (m) => sink.send(m));
      fx.publish(tick('BTC', '20', 20)); // kept: straight out, before the reply
      fx.publish(tick('SOL', '21', 21)); // added: held, replaces its snapshot price
      fx.release();
      await reopened;
      fx.publish(tick('BTC', '22', 22));
      assert.deepEqual(summary(sink), [
        'BTC 20',
        '{"type":"subscribed","channel":"prices","symbols":["BTC","ETH","SOL"]}',
        'ETH 3',
        'SOL 21',
        'BTC 22',
      ]);
    });

    it('from a subset to every symbol: the snapshot brings the others only; then back to a subset', async () => {
      const fx = setup(stored, SYMBOLS);
      fx.publish(tick('DOGE', '7', 7)); // not configured, seen live: part of "every symbol"
      const { sink, stream, opened } = fx.subscribe(undefined, ['SOL']);
      await opened;
      await stream.open(request(), (m) => sink.send(m));
      await stream.open(request(['ETH']), (m) => sink.send(m));
      for (const symbol of [...SYMBOLS, 'DOGE']) fx.publish(tick(symbol, '30', 30));
      assert.deepEqual(summary(sink), [
        '{"type":"subscribed","channel":"prices","symbols":["SOL"]}',
        'SOL 1',
        '{"type":"subscribed","channel":"prices"}',
        'BTC 2',
        'ETH 3',
        'DOGE 7',
        '{"type":"subscribed","channel":"prices","symbols":["ETH"]}',
        'ETH 30',
      ]);
    });

    it('a subscribe that overtakes one still reading its snapshot gets the snapshot itself', async () => {
      const fx = setup(stored, SYMBOLS);
      fx.hold();
      const { sink, stream, opened } = fx.subscribe();
      const reopened = stream.open(request(['BTC']), (m) => sink.send(m));
      fx.release();
      await Promise.all([opened, reopened]);
      assert.deepEqual(summary(sink), ['{"type":"subscribed","channel":"prices","symbols":["BTC"]}', 'BTC 2']);
    });

    it('subscribing again to every symbol repeats nothing', async () => {
      const fx = setup(stored, SYMBOLS);
      const { sink, stream, opened } = fx.subscribe();
      await opened;
      sink.frames.length = 0;
      await stream.open(request(), (m) => sink.send(m));
      assert.deepEqual(summary(sink), ['{"type":"subscribed","channel":"prices"}']);
      assert.equal(fx.reads(), 1, 'no second read of the store');
    });

    it('a slow socket: a held tick of a dropped symbol is forgotten, one of a kept symbol still follows', async () => {
      const fx = setup([], SYMBOLS);
      const { sink, stream, opened } = fx.subscribe(undefined, ['SOL', 'BTC']);
      await opened;
      sink.slow = true;
      fx.publish(tick('SOL', '1', 1));
      fx.publish(tick('BTC', '2', 2));
      await stream.open(request(['BTC']), (m) => sink.send(m));
      sink.drain();
      assert.deepEqual(summary(sink).slice(1), ['{"type":"subscribed","channel":"prices","symbols":["BTC"]}', 'BTC 2']);
    });

    it('unsubscribing forgets the ticks held for a slow socket', async () => {
      const fx = setup([], SYMBOLS);
      const { sink, stream, opened } = fx.subscribe();
      await opened;
      sink.slow = true;
      fx.publish(tick('SOL', '1', 1));
      stream.close();
      sink.drain();
      assert.deepEqual(sink.ofType('price'), []);
    });
  });
});
