import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { PortfolioUpdateEvent } from '@repo/events';
import { EVENT_CHANNELS } from '../src/broker-contract.ts';
import { PortfolioChannel } from '../src/streams/portfolio-channel.ts';
import { channelDeps, FakeOwner, FakeSink, metricValue, routeOf } from './stream-fakes.ts';

const portfolio = (
  userId: number,
  version: number,
  extra: Partial<PortfolioUpdateEvent> = {},
): PortfolioUpdateEvent => ({
  userId,
  balances: [{ asset: 'USD', available: String(1000 - version), locked: '0' }],
  positions: [{ asset: 'SOL', size: String(version), avgEntryPrice: '100' }],
  timestamp: new Date(Date.UTC(2026, 0, 1, 0, 0, version)).toISOString(),
  version,
  ...extra,
});

/** A portfolio channel over a store the test fills, and a way to publish updates into it. */
function setup(options: { loadPortfolio?: (userId: number) => Promise<PortfolioUpdateEvent | null> } = {}) {
  const deps = channelDeps();
  const stored = new Map<number, string>();
  let gate: Promise<void> | null = null;
  let open = () => {};
  const channel = new PortfolioChannel({
    ...deps,
    readStored: async (userId) => {
      if (gate) await gate;
      return stored.get(userId) ?? null;
    },
    loadPortfolio: options.loadPortfolio,
  });
  const publish = (event: object) => routeOf(channel, EVENT_CHANNELS.portfolio)(JSON.stringify(event));
  const subscribe = (userId: number, sink = new FakeSink(), owner = new FakeOwner()) => {
    const stream = channel.subscribe(sink, owner, userId);
    owner.streams.set('portfolio', stream);
    const opened = stream.open({ type: 'subscribe', channel: 'portfolio' }, (m) => sink.send(m));
    return { sink, stream, opened };
  };
  return {
    deps,
    stored,
    publish,
    subscribe,
    hold: () => {
      gate = new Promise((resolve) => (open = resolve));
    },
    release: () => {
      gate = null;
      open();
    },
  };
}

describe('portfolio stream', () => {
  it("answers subscribed, then the user's stored portfolio, then newer live updates only", async () => {
    const fx = setup();
    fx.stored.set(7, JSON.stringify(portfolio(7, 3)));
    const { sink, opened } = fx.subscribe(7);
    await opened;
    for (const version of [2, 3, 5, 4, 6]) fx.publish(portfolio(7, version));
    fx.publish(portfolio(8, 9)); // another user's
    assert.deepEqual(sink.messages(), [
      { type: 'subscribed', channel: 'portfolio' },
      { type: 'portfolio', ...portfolio(7, 3) },
      { type: 'portfolio', ...portfolio(7, 5) },
      { type: 'portfolio', ...portfolio(7, 6) },
    ]);
  });

  it('holds the latest update that arrives during the snapshot read, and sends only it when it is newer', async () => {
    const fx = setup();
    fx.stored.set(7, JSON.stringify(portfolio(7, 1)));
    fx.hold();
    const { sink, opened } = fx.subscribe(7);
    fx.publish(portfolio(7, 2));
    fx.publish(portfolio(7, 3));
    fx.release();
    await opened;
    assert.deepEqual(sink.messages(), [
      { type: 'subscribed', channel: 'portfolio' },
      { type: 'portfolio', ...portfolio(7, 3) },
    ]);
  });

  it('falls back to loadPortfolio, drops a malformed stored one, and never sends another user’s', async () => {
    const fx = setup({ loadPortfolio: (userId) => Promise.resolve(userId === 7 ? portfolio(7, 4) : portfolio(99, 1)) });
    fx.stored.set(7, '{"userId":7,"balances":"lots"}');
    const mine = fx.subscribe(7);
    const theirs = fx.subscribe(8);
    await Promise.all([mine.opened, theirs.opened]);
    assert.deepEqual(mine.sink.ofType('portfolio'), [{ type: 'portfolio', ...portfolio(7, 4) }]);
    assert.deepEqual(theirs.sink.ofType('portfolio'), []);
    assert.equal(await metricValue(fx.deps.registry, 'tradewire_ws_events_dropped_total', { reason: 'malformed' }), 1);
  });

  it('answers auth_required when the session ended while the snapshot was read', async () => {
    const fx = setup();
    fx.stored.set(7, JSON.stringify(portfolio(7, 1)));
    fx.hold();
    const { sink, stream, opened } = fx.subscribe(7);
    stream.close();
    fx.release();
    await opened;
    assert.deepEqual(sink.messages(), [
      { type: 'error', code: 'auth_required', message: 'authenticate before subscribing to portfolio' },
    ]);
    assert.equal(await metricValue(fx.deps.registry, 'tradewire_ws_subscriptions', { channel: 'portfolio' }), 0);
  });
});
