import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { PortfolioUpdateEvent } from '@repo/events';
import { EVENT_CHANNELS } from '../src/broker-contract.ts';
import { defaultHistoryReadLimits, HistoryReader } from '../src/streams/history-reader.ts';
import { OrderChannel } from '../src/streams/order-channel.ts';
import { PortfolioChannel } from '../src/streams/portfolio-channel.ts';
import { GatedHistory } from './memory-order-history.ts';
import { channelDeps, FakeOwner, FakeSink, orderFilled, routeOf } from './stream-fakes.ts';
import { metricValue } from './metric-value.ts';
import { waitFor } from '@repo/test-support';

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
    channel,
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

  it('keeps the newest version held during the snapshot read, whatever order the updates arrive in', async () => {
    // Two API relays can publish one user's portfolios out of version order.
    const fx = setup();
    fx.stored.set(7, JSON.stringify(portfolio(7, 6)));
    fx.hold();
    const { sink, opened } = fx.subscribe(7);
    fx.publish(portfolio(7, 8));
    fx.publish(portfolio(7, 7));
    fx.release();
    await opened;
    assert.deepEqual(sink.messages(), [
      { type: 'subscribed', channel: 'portfolio' },
      { type: 'portfolio', ...portfolio(7, 8) },
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

  it('after a broker outage, sends each stream the stored portfolio when it is newer than its own', async () => {
    const fx = setup();
    fx.stored.set(7, JSON.stringify(portfolio(7, 1)));
    const seven = fx.subscribe(7);
    const alsoSeven = fx.subscribe(7);
    fx.stored.set(8, JSON.stringify(portfolio(8, 4)));
    const eight = fx.subscribe(8);
    await Promise.all([seven.opened, alsoSeven.opened, eight.opened]);
    fx.publish(portfolio(7, 2));
    // Published while the gateway was not subscribed: only the store has them.
    fx.stored.set(7, JSON.stringify(portfolio(7, 3)));
    fx.stored.set(9, JSON.stringify(portfolio(9, 1)));
    await fx.channel.resumed();
    for (const { sink } of [seven, alsoSeven]) {
      assert.deepEqual(
        sink.ofType('portfolio').map((m) => m.version),
        [1, 2, 3],
      );
    }
    assert.deepEqual(
      eight.sink.ofType('portfolio').map((m) => m.version),
      [4],
      'nothing newer for user 8',
    );
    await fx.channel.resumed();
    assert.equal(seven.sink.ofType('portfolio').length, 3, 'a second recovery sends nothing again');
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

/** One socket of user 7 with an order stream and a portfolio stream, over one history. */
async function socketWithOrders(
  options: {
    history?: boolean;
    /** User 7's stored portfolio (the broker's latest-value store) and database one. */
    stored?: PortfolioUpdateEvent;
    database?: PortfolioUpdateEvent;
    /** Orders of user 7 committed before the socket subscribes. */
    committed?: number;
  } = {},
) {
  const deps = channelDeps();
  const history = new GatedHistory();
  for (let seq = 1; seq <= (options.committed ?? 0); seq++) history.memory.record('order_filled', orderFilled(7, seq));
  const orders = new OrderChannel({
    ...deps,
    history: options.history === false ? null : new HistoryReader(history, defaultHistoryReadLimits()),
  });
  const { stored, database } = options;
  const portfolios = new PortfolioChannel({
    ...deps,
    readStored: () => Promise.resolve(stored ? JSON.stringify(stored) : null),
    loadPortfolio: () => Promise.resolve(database ?? null),
  });
  const sink = new FakeSink();
  const owner = new FakeOwner();
  const reply = (m: Parameters<FakeSink['send']>[0]) => void sink.send(m);
  const orderStream = orders.subscribe(sink, owner, 7);
  owner.streams.set('orders', orderStream);
  const portfolioStream = portfolios.subscribe(sink, owner, 7);
  owner.streams.set('portfolio', portfolioStream);
  await orderStream.open({ type: 'subscribe', channel: 'orders' }, reply);
  await portfolioStream.open({ type: 'subscribe', channel: 'portfolio' }, reply);
  return {
    deps,
    sink,
    owner,
    history,
    orderStream,
    /** Records order `seq` of user 7 in the history, as committing it does. */
    commit: (seq: number) => history.memory.record('order_filled', orderFilled(7, seq)),
    order: (seq: number) => routeOf(orders, EVENT_CHANNELS.order_filled)(JSON.stringify(orderFilled(7, seq))),
    portfolio: (version: number, orderSeq: number) =>
      routeOf(portfolios, EVENT_CHANNELS.portfolio)(JSON.stringify(portfolio(7, version, { orderSeq }))),
    /** Order and portfolio events written to the socket, as `O<seq>` and `P<version>`. */
    events: () =>
      sink
        .messages()
        .flatMap((m) => (m.type === 'order_filled' ? [`O${m.seq}`] : m.type === 'portfolio' ? [`P${m.version}`] : [])),
  };
}

describe('portfolio stream after the order stream', () => {
  it('holds a portfolio whose order event has not gone out, fills that gap from history, then sends it', async () => {
    const fx = await socketWithOrders();
    fx.commit(1);
    fx.portfolio(1, 1); // its order event is committed but was not (yet) delivered here
    await fx.sink.written((m) => m.type === 'portfolio');
    fx.order(1); // arrives late: a duplicate now
    assert.deepEqual(fx.events(), ['O1', 'P1']);
  });

  it('while a replay runs, holds only the latest portfolio and sends it after the replay', async () => {
    const fx = await socketWithOrders();
    for (const seq of [1, 2, 3]) fx.commit(seq);
    fx.history.hold();
    const replay = fx.orderStream.open({ type: 'subscribe', channel: 'orders', since: 0 }, () => {});
    fx.portfolio(1, 1);
    fx.portfolio(3, 3);
    fx.portfolio(2, 2); // older than the one held: dropped
    fx.history.release();
    await replay;
    await fx.sink.written((m) => m.type === 'portfolio');
    assert.deepEqual(fx.events(), ['O1', 'O2', 'O3', 'P3']);
  });

  it('sends at once what needs no wait: its order event already went out, or no history to order against', async () => {
    const fx = await socketWithOrders();
    fx.commit(1);
    fx.order(1);
    fx.portfolio(1, 1);
    assert.deepEqual(fx.events(), ['O1', 'P1']);
    const plain = await socketWithOrders({ history: false });
    plain.portfolio(1, 1);
    assert.deepEqual(plain.events(), ['P1']);
  });

  it('sends a held portfolio when orders are unsubscribed, and none after its own unsubscribe', async () => {
    const fx = await socketWithOrders();
    fx.history.hold(); // the gap fill cannot finish
    fx.portfolio(1, 1);
    assert.deepEqual(fx.events(), []);
    fx.owner.streams.delete('orders');
    fx.orderStream.close();
    assert.deepEqual(fx.events(), ['P1']);

    const other = await socketWithOrders();
    other.history.hold();
    other.portfolio(1, 1);
    other.owner.streams.get('portfolio')!.close();
    other.commit(1);
    other.history.release();
    other.order(1);
    await other.sink.written((m) => m.type === 'order_filled');
    assert.deepEqual(other.events(), ['O1']);
  });

  it('drops a portfolio whose order event the history does not hold; the socket and its orders go on', async () => {
    const fx = await socketWithOrders();
    fx.portfolio(1, 5); // a confused publisher: user 7 has no order 5
    await waitFor(
      async () =>
        (await metricValue(fx.deps.registry, 'tradewire_ws_events_dropped_total', { reason: 'inconsistent' })) === 1,
      { what: 'the portfolio dropped' },
    );
    // Not closed: a resubscription would wait for the same missing event again, for ever.
    assert.equal(fx.sink.closedWith, null);
    fx.commit(1);
    fx.order(1);
    fx.portfolio(2, 1);
    await fx.sink.written((m) => m.type === 'portfolio');
    assert.deepEqual(fx.events(), ['O1', 'P2']);
  });

  it("a stored portfolio an earlier database left (orderSeq past the history) yields to the database's", async () => {
    const fx = await socketWithOrders({
      committed: 2,
      stored: portfolio(7, 50, { orderSeq: 40 }),
      database: portfolio(7, 2, { orderSeq: 2 }),
    });
    await fx.sink.written((m) => m.type === 'portfolio');
    assert.deepEqual(fx.events(), ['P2']);
    assert.equal(fx.sink.closedWith, null);
    fx.commit(3);
    fx.order(3);
    fx.portfolio(3, 3);
    await fx.sink.written((m) => m.type === 'portfolio' && m.version === 3);
    assert.deepEqual(fx.events(), ['P2', 'O3', 'P3']);
  });
});
