import assert from 'node:assert/strict';
import { describe, it, beforeEach, afterEach } from 'node:test';
import { nextValue, waitFor } from '@repo/test-support';
import { createEventPublisher, partitionedChannelLayout, type Broker } from '../src/index.ts';
import { listen } from './listen.ts';

export interface BrokerContractOptions {
  /**
   * For brokers with a server: kills the Redis node that serves `channel` (SIGKILL) and resolves
   * once it is dead, with a function that resolves once the channel is served again (the same
   * server restarted, or a replica promoted).
   */
  killServerOf?: (channel: string) => Promise<() => Promise<void>>;
}

/**
 * The one contract every Broker implementation passes. `make` returns a fresh, connected
 * broker over a clean store; the suite closes it.
 */
export function brokerContract(name: string, make: () => Promise<Broker>, options: BrokerContractOptions = {}): void {
  describe(`Broker contract: ${name}`, () => {
    let broker: Broker;
    beforeEach(async () => {
      broker = await make();
    });
    afterEach(async () => {
      await broker.close();
    });

    it('delivers a published message to a subscriber of that channel only', async () => {
      const a = await listen(broker, 'a');
      const b = await listen(broker, 'b');
      await broker.publish('a', 'hello');
      await broker.publish('b', 'marker');
      // Delivery is in order per channel and both channels share one connection: once the
      // marker is on b, anything wrongly routed from a would be there before it.
      assert.equal(await a.next(), 'hello');
      assert.equal(await b.next(), 'marker');
      assert.deepEqual(a.messages, ['hello']);
      assert.deepEqual(b.messages, ['marker']);
    });

    it('delivers in publish order', async () => {
      const got: string[] = [];
      let done!: () => void;
      const all = new Promise<void>((r) => (done = r));
      await broker.subscribe('order', (m) => {
        got.push(m);
        if (got.length === 100) done();
      });
      for (let i = 0; i < 100; i++) await broker.publish('order', String(i));
      await all;
      assert.deepEqual(
        got,
        Array.from({ length: 100 }, (_, i) => String(i)),
      );
    });

    it('calls every handler of a channel, and a throwing handler does not stop the others', async () => {
      await broker.subscribe('x', () => {
        throw new Error('boom');
      });
      const second = await listen(broker, 'x');
      await broker.publish('x', 'm');
      assert.equal(await second.next(), 'm');
    });

    it('stops delivering to a handler after unsubscribe, keeps the others', async () => {
      const removed = await listen(broker, 'u');
      const kept = await listen(broker, 'u');
      await removed.stop();
      await broker.publish('u', 'after');
      assert.equal(await kept.next(), 'after');
      assert.deepEqual(removed.messages, []);
    });

    it('keeps the latest value per key', async () => {
      assert.equal(await broker.getLatest('k1'), null);
      await broker.setLatest('k1', 'one');
      await broker.setLatest('k1', 'two');
      await broker.setLatest('k2', 'three');
      assert.equal(await broker.getLatest('k1'), 'two');
      assert.deepEqual(await broker.getLatestMany(['k1', 'missing', 'k2']), ['two', null, 'three']);
      assert.deepEqual(await broker.getLatestMany([]), []);
      await broker.deleteLatest('k1');
      await broker.deleteLatest('never-set');
      assert.deepEqual(await broker.getLatestMany(['k1', 'k2']), [null, 'three']);
    });

    it('keeps a versioned latest value from going back to an older version', async () => {
      const v = (version?: number, tag = '') => JSON.stringify({ version, tag });
      assert.equal(await broker.setLatestIfNewer('p', v(6), 6), true, 'nothing stored yet');
      assert.equal(await broker.setLatestIfNewer('p', v(5), 5), false);
      assert.equal(await broker.setLatestIfNewer('p', v(6, 'again'), 6), false, 'the same version is not newer');
      assert.equal(await broker.getLatest('p'), v(6));
      assert.equal(await broker.setLatestIfNewer('p', v(7), 7), true);
      assert.equal(await broker.getLatest('p'), v(7));
      // A stored value without a readable version is replaced, as by setLatest.
      for (const stored of ['not json', v(undefined), '{"version":"9"}', 'null', '[9]']) {
        await broker.setLatest('q', stored);
        assert.equal(await broker.setLatestIfNewer('q', v(1), 1), true, stored);
        assert.equal(await broker.getLatest('q'), v(1));
      }
    });

    it("never moves a user's stored portfolio back to an older version, yet publishes it", async () => {
      const publisher = createEventPublisher(broker);
      const updates = await listen(broker, 'trading:events:portfolio:update');
      const portfolio = (version: number | undefined, available: string) => ({
        userId: 7,
        balances: [{ asset: 'USD', available, locked: '0' }],
        positions: [],
        timestamp: '2026-01-01T00:00:00.000Z',
        ...(version === undefined ? {} : { version }),
      });
      const stored = async () => JSON.parse((await broker.getLatest('trading:portfolio:7')) ?? 'null') as unknown;
      // Two relays read v5; one stores v5 and then v6, the other's slow v5 comes last.
      await publisher.publishPortfolioUpdate(portfolio(5, '500'));
      const v6 = await publisher.publishPortfolioUpdate(portfolio(6, '600'));
      await publisher.publishPortfolioUpdate(portfolio(5, '500'));
      assert.deepEqual(await stored(), v6);
      // Gateways drop a stale version themselves: it is still published.
      for (const version of [5, 6, 5])
        assert.equal((JSON.parse(await updates.next()) as { version: number }).version, version);
      const v7 = await publisher.publishPortfolioUpdate(portfolio(7, '700'));
      assert.deepEqual(await stored(), v7);
      // A portfolio without a version is stored as before: the last one written wins.
      const unversioned = await publisher.publishPortfolioUpdate(portfolio(undefined, '1'));
      assert.deepEqual(await stored(), unversioned);
      await updates.stop();
    });

    it("carries the partitioned layout: a partition channel gets its users' events only", async () => {
      const layout = partitionedChannelLayout(4);
      const publisher = createEventPublisher(broker, { layout });
      const one = await listen(broker, layout.privateChannel('order_filled', 1));
      const two = await listen(broker, layout.privateChannel('order_filled', 2));
      const revokedTwo = await listen(broker, layout.privateChannel('session_revoked', 2));
      for (let userId = 1; userId <= 8; userId++) {
        await publisher.publishOrderFilled({
          userId,
          orderId: userId,
          side: 'buy',
          baseAsset: 'SOL',
          quoteAsset: 'USD',
          executedPrice: '1',
          executedSize: '1',
          fee: '0',
          seq: 1,
        });
      }
      await publisher.publishSessionRevoked({ sessionId: 'of-user-6', userId: 6 });
      await publisher.publishSessionRevoked({ sessionId: 'of-nobody-known' });
      const users = async (l: typeof one, n: number) => {
        for (let i = 0; i < n; i++) await l.next();
        return l.messages.map((m) => (JSON.parse(m) as { userId: number }).userId);
      };
      assert.deepEqual(await users(one, 2), [1, 5]);
      assert.deepEqual(await users(two, 2), [2, 6]);
      await revokedTwo.next();
      await revokedTwo.next();
      assert.deepEqual(
        revokedTwo.messages.map((m) => (JSON.parse(m) as { sessionId: string }).sessionId),
        ['of-user-6', 'of-nobody-known'],
      );
    });

    if (options.killServerOf) {
      const killServerOf = options.killServerOf;
      it('reports down when its server dies, fails fast meanwhile, and resubscribes once it is back', async () => {
        const got: string[] = [];
        await broker.subscribe('survivor', (m) => got.push(m));
        await broker.publish('survivor', 'before');
        await waitFor(() => got.includes('before'), { what: 'the message before the kill' });

        const down = nextValue<boolean>((cb) => broker.onStatusChange(cb), { timeoutMs: 10_000, what: 'down' });
        const up = nextValue<boolean>((cb) => broker.onStatusChange((u) => u && cb(u)), {
          timeoutMs: 30_000,
          what: 'up again',
        });
        const restore = await killServerOf('survivor');
        assert.equal(await down, false);
        const started = Date.now();
        await assert.rejects(broker.publish('survivor', 'lost'), { code: 'broker_unavailable' });
        assert.ok(Date.now() - started < 3000, 'publish while down must not hang');
        await restore();
        assert.equal(await up, true);
        // Up means resubscribed: the first publish after it reaches the old handler.
        await broker.publish('survivor', 'after');
        await waitFor(() => got.includes('after'), { what: 'the message after the recovery' });
        assert.deepEqual(got, ['before', 'after']);
      });
    }

    it('is up while open, and refuses work after close', async () => {
      assert.equal(broker.isUp(), true);
      await broker.close();
      assert.equal(broker.isUp(), false);
      await assert.rejects(broker.publish('a', 'x'), { code: 'broker_closed' });
      broker = await make();
    });
  });
}
