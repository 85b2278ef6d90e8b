import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MemoryBroker, createEventPublisher } from '@repo/broker';
import type { ServerMessage } from '@repo/protocol';
import { GatedHistory, MemoryOrderHistory } from './memory-order-history.ts';
import { orderFilled } from './stream-fakes.ts';
import { startGateway } from './gateway-fixture.ts';
import { waitFor, type TestClient } from '@repo/test-support';

/**
 * Order replay at the gateway: `subscribe orders since` replays from history, the seam between
 * replay and live has no gap and no duplicate, live gaps are filled from history, and
 * `recovered:false` when history no longer reaches back.
 */

const seqs = (client: TestClient) =>
  client.received
    .filter((m): m is Extract<ServerMessage, { type: 'order_filled' }> => m.type === 'order_filled')
    .map((m) => m.seq);

describe('order replay and gap fill', () => {
  it('answers a fresh subscription with the latest seq and replays nothing', async () => {
    const history = new MemoryOrderHistory();
    for (let seq = 1; seq <= 3; seq++) history.record('order_filled', orderFilled(7, seq));
    const fx = await startGateway({ history });
    try {
      const { client } = await fx.connectAs(7);
      assert.deepEqual(await client.request({ type: 'subscribe', channel: 'orders' }), {
        type: 'subscribed',
        channel: 'orders',
        seq: 3,
        id: 'r2',
      });
      await client.barrier();
      assert.deepEqual(seqs(client), []);
    } finally {
      await fx.close();
    }
  });

  it('replays after since, then live, with no gap and no duplicate at the seam', async () => {
    const memory = new MemoryOrderHistory();
    for (let seq = 1; seq <= 5; seq++) memory.record('order_filled', orderFilled(7, seq));
    const history = new GatedHistory(memory);
    const fx = await startGateway({ history, historyLimits: { pageEvents: 2 } });
    const publisher = createEventPublisher(fx.broker);
    try {
      const { client } = await fx.connectAs(7);
      history.hold();
      const reply = client.request({ type: 'subscribe', channel: 'orders', since: 2 });
      await history.untilReads(1);
      // Published while the first history page is being read: 5 again (a duplicate), 6 and 7 new.
      memory.record('order_filled', orderFilled(7, 6));
      memory.record('order_filled', orderFilled(7, 7));
      for (const seq of [5, 6, 7]) await publisher.publishOrderFilled(orderFilled(7, seq));
      await fx.broker.publish('noop', '');
      history.release();
      assert.deepEqual(await reply, { type: 'subscribed', channel: 'orders', recovered: true, seq: 5, id: 'r2' });
      await publisher.publishOrderFilled(orderFilled(7, 7)); // published twice
      await publisher.publishOrderFilled(orderFilled(7, 8));
      await client.waitFor((m) => m.type === 'order_filled' && m.seq === 8);
      await client.barrier();
      assert.deepEqual(seqs(client), [3, 4, 5, 6, 7, 8]);
      assert.ok((await fx.metric('tradewire_ws_events_dropped_total', { reason: 'duplicate' })) >= 2);
    } finally {
      await fx.close();
    }
  });

  it('says recovered:false and replays nothing when history no longer reaches since', async () => {
    const history = new MemoryOrderHistory({ keep: 3 });
    for (let seq = 1; seq <= 10; seq++) history.record('order_filled', orderFilled(7, seq));
    const fx = await startGateway({ history });
    const publisher = createEventPublisher(fx.broker);
    try {
      const { client } = await fx.connectAs(7);
      assert.deepEqual(await client.request({ type: 'subscribe', channel: 'orders', since: 2 }), {
        type: 'subscribed',
        channel: 'orders',
        recovered: false,
        seq: 10,
        id: 'r2',
      });
      // Within the history: recovered.
      const other = (await fx.connectAs(7)).client;
      const ok = await other.request({ type: 'subscribe', channel: 'orders', since: 7 });
      assert.equal((ok as { recovered?: boolean }).recovered, true);
      history.record('order_filled', orderFilled(7, 11));
      await publisher.publishOrderFilled(orderFilled(7, 11));
      await client.waitFor((m) => m.type === 'order_filled' && m.seq === 11);
      await other.waitFor((m) => m.type === 'order_filled' && m.seq === 11);
      assert.deepEqual(seqs(client), [11]);
      assert.deepEqual(seqs(other), [8, 9, 10, 11]);
    } finally {
      await fx.close();
    }
  });

  it('fills a live gap from history (an event the broker lost) before delivering what follows', async () => {
    const history = new MemoryOrderHistory();
    const fx = await startGateway({ history });
    const publisher = createEventPublisher(fx.broker);
    try {
      const { client } = await fx.connectAs(7);
      await client.request({ type: 'subscribe', channel: 'orders' });
      history.record('order_filled', orderFilled(7, 1));
      await publisher.publishOrderFilled(orderFilled(7, 1));
      history.record('order_filled', orderFilled(7, 2)); // recorded, never published: lost on the way
      history.record('order_filled', orderFilled(7, 3));
      await publisher.publishOrderFilled(orderFilled(7, 3));
      await client.waitFor((m) => m.type === 'order_filled' && m.seq === 3);
      await client.barrier();
      assert.deepEqual(seqs(client), [1, 2, 3]);
    } finally {
      await fx.close();
    }
  });

  it('after a broker outage, catches every order subscriber up from history (a burst lost its last)', async () => {
    /** A MemoryBroker whose status the test flips, as a Redis reconnect would. */
    class FlippingBroker extends MemoryBroker {
      readonly listeners = new Set<(up: boolean) => void>();
      override onStatusChange(listener: (up: boolean) => void): () => void {
        this.listeners.add(listener);
        return () => this.listeners.delete(listener);
      }
      flip(up: boolean): void {
        for (const listener of this.listeners) listener(up);
      }
    }
    const history = new MemoryOrderHistory();
    const broker = new FlippingBroker();
    const fx = await startGateway({ history, broker });
    try {
      const a = (await fx.connectAs(7)).client;
      const b = (await fx.connectAs(8)).client;
      await a.request({ type: 'subscribe', channel: 'orders' });
      await b.request({ type: 'subscribe', channel: 'orders' });
      broker.flip(false);
      history.record('order_filled', orderFilled(7, 1)); // committed and published while the gateway was not subscribed
      history.record('order_filled', orderFilled(7, 2));
      history.record('order_filled', orderFilled(8, 1));
      broker.flip(true);
      await a.waitFor((m) => m.type === 'order_filled' && m.seq === 2);
      await b.waitFor((m) => m.type === 'order_filled' && m.seq === 1);
      await a.barrier();
      assert.deepEqual(seqs(a), [1, 2]);
      assert.deepEqual(seqs(b), [1]);
    } finally {
      await fx.close();
      await broker.close();
    }
  });

  it('merges identical history reads: a storm of 50 resubscriptions of one user costs one read', async () => {
    const memory = new MemoryOrderHistory();
    for (let seq = 1; seq <= 20; seq++) memory.record('order_filled', orderFilled(7, seq));
    const history = new GatedHistory(memory);
    const fx = await startGateway({ history });
    try {
      const clients = await Promise.all(Array.from({ length: 50 }, () => fx.connectAs(7)));
      history.hold();
      const replies = clients.map(({ client }) => client.request({ type: 'subscribe', channel: 'orders', since: 10 }));
      // A stream asks for its history as it is indexed: 50 indexed streams have all asked.
      await waitFor(async () => (await fx.metric('tradewire_ws_subscriptions', { channel: 'orders' })) === 50, {
        what: '50 order subscriptions waiting for the history',
      });
      history.release();
      await Promise.all(replies);
      for (const { client } of clients) {
        await client.waitFor((m) => m.type === 'order_filled' && m.seq === 20);
        assert.deepEqual(seqs(client), [11, 12, 13, 14, 15, 16, 17, 18, 19, 20]);
      }
      assert.equal(history.reads, 1);
    } finally {
      await fx.close();
    }
  });

  it('answers rate_limited at once to a subscribe past maxWaitingReads waiting reads; a retry recovers', async () => {
    const memory = new MemoryOrderHistory();
    for (const userId of [7, 8, 9]) memory.record('order_filled', orderFilled(userId, 1));
    const history = new GatedHistory(memory);
    const fx = await startGateway({ history, historyLimits: { concurrentReads: 1, maxWaitingReads: 1 } });
    try {
      const [running, waiting, refused] = await Promise.all([fx.connectAs(7), fx.connectAs(8), fx.connectAs(9)]);
      history.hold();
      const subscribe = { type: 'subscribe', channel: 'orders', since: 0 };
      const answers = [running, waiting].map(({ client }) => client.request(subscribe));
      await waitFor(async () => (await fx.metric('tradewire_ws_subscriptions', { channel: 'orders' })) === 2, {
        what: 'one read running, one waiting',
      });
      assert.deepEqual(await refused.client.request(subscribe), {
        type: 'error',
        code: 'rate_limited',
        message: 'too many order history reads waiting; retry shortly',
        id: 'r2',
      });
      assert.equal(history.reads, 1, 'refused without a query');
      history.release();
      for (const answer of await Promise.all(answers)) assert.equal(answer.type, 'subscribed');
      const retried = await refused.client.request(subscribe);
      assert.deepEqual(retried, { type: 'subscribed', channel: 'orders', recovered: true, seq: 1, id: 'r3' });
      await refused.client.waitFor((m) => m.type === 'order_filled' && m.seq === 1);
    } finally {
      await fx.close();
    }
  });

  it('a second tab resuming from the same seq while the first reads gets the event published in between', async () => {
    // A gateway dies; both tabs of a user come back on the same process with the same `since`.
    // The second must not share the first's read when an event of the user went out live
    // in between: that event is in neither the read (its snapshot is older) nor the second tab's
    // held events (it arrived before the tab subscribed). As the user's last event, no later
    // event would reveal the gap.
    const memory = new MemoryOrderHistory();
    for (let seq = 1; seq <= 10; seq++) memory.record('order_filled', orderFilled(7, seq));
    const history = new GatedHistory(memory);
    const fx = await startGateway({ history });
    const publisher = createEventPublisher(fx.broker);
    try {
      const [first, second] = await Promise.all([fx.connectAs(7), fx.connectAs(7)]);
      history.hold();
      const firstReply = first.client.request({ type: 'subscribe', channel: 'orders', since: 10 });
      await history.untilReads(1);
      memory.record('order_filled', orderFilled(7, 11));
      await publisher.publishOrderFilled(orderFilled(7, 11));
      await fx.broker.publish('noop', '');
      const secondReply = second.client.request({ type: 'subscribe', channel: 'orders', since: 10 });
      await waitFor(async () => (await fx.metric('tradewire_ws_subscriptions', { channel: 'orders' })) === 2, {
        what: "the second tab's order subscription",
      });
      history.release();
      await Promise.all([firstReply, secondReply]);
      for (const { client } of [first, second]) {
        await client.waitFor((m) => m.type === 'order_filled' && m.seq === 11, 2000, 'seq 11');
        await client.barrier();
        assert.deepEqual(seqs(client), [11]);
      }
    } finally {
      await fx.close();
    }
  });

  it('never sends a portfolio older than one the socket already has', async () => {
    const fx = await startGateway();
    const publisher = createEventPublisher(fx.broker);
    const portfolio = (version: number) => ({
      userId: 7,
      balances: [{ asset: 'USD', available: String(100 - version), locked: '0' }],
      positions: [],
      timestamp: new Date(Date.UTC(2026, 0, 1, 0, 0, version)).toISOString(),
      version,
    });
    try {
      const { client } = await fx.connectAs(7);
      await client.request({ type: 'subscribe', channel: 'portfolio' });
      for (const version of [3, 2, 3, 4, 1]) await publisher.publishPortfolioUpdate(portfolio(version));
      await client.waitFor((m) => m.type === 'portfolio' && m.version === 4);
      await client.barrier();
      assert.deepEqual(
        client.ofType('portfolio').map((m) => m.version),
        [3, 4],
      );
    } finally {
      await fx.close();
    }
  });
});
