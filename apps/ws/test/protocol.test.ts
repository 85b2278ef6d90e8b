import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { MemoryBroker, createEventPublisher, createPriceStore, type EventPublisher } from '@repo/broker';
import { startGateway, type GatewayFixture } from './gateway-fixture.ts';
import { waitFor } from '@repo/test-support';

const order = (userId: number, orderId: number) => ({
  userId,
  orderId,
  side: 'buy' as const,
  baseAsset: 'SOL',
  quoteAsset: 'USD',
  executedPrice: '231.45',
  executedSize: '10',
  fee: '0.23145',
  timestamp: '2025-01-01T00:00:00.000Z',
});

const rejection = (userId: number, orderId: number) => ({
  userId,
  orderId,
  side: 'sell' as const,
  baseAsset: 'SOL',
  quoteAsset: 'USD',
  requestedSize: '5',
  reason: 'insufficient balance',
  timestamp: '2025-01-01T00:00:00.000Z',
});

const portfolio = (userId: number, available: string, version?: number) => ({
  userId,
  balances: [{ asset: 'USD', available, locked: '0' }],
  positions: [{ asset: 'SOL', size: '1', avgEntryPrice: '200' }],
  timestamp: new Date().toISOString(),
  ...(version === undefined ? {} : { version }),
});

describe('gateway protocol', () => {
  let fx: GatewayFixture;
  let publisher: EventPublisher;

  before(async () => {
    fx = await startGateway({ symbols: ['SOL', 'BTC'] });
    publisher = createEventPublisher(fx.broker);
  });
  after(() => fx.close());

  describe('requests and replies', () => {
    it('answers ping with pong, echoing string and number ids, and no id when none was sent', async () => {
      const client = await fx.connect();
      assert.deepEqual(await client.request({ type: 'ping' }), { type: 'pong', id: 'r1' });
      client.skipReceived();
      client.send({ type: 'ping', id: 42 });
      assert.deepEqual(await client.next(), { type: 'pong', id: 42 });
      client.send({ type: 'ping' });
      assert.deepEqual(await client.next(), { type: 'pong' });
    });

    it('answers each kind of bad message with its error code and stays usable', async () => {
      const client = await fx.connect();
      const cases: [string | object, string, unknown?][] = [
        ['{not json', 'invalid_json'],
        ['"just a string"', 'invalid_message'],
        ['[1,2]', 'invalid_message'],
        ['null', 'invalid_message'],
        [{ no: 'type' }, 'invalid_message'],
        [{ type: 'dance', id: 'd1' }, 'invalid_message', 'd1'],
        [{ type: 'auth', id: 2 }, 'invalid_message', 2],
        [{ type: 'auth', token: 17 }, 'invalid_message'],
        [{ type: 'auth', token: '' }, 'invalid_message'],
        [{ type: 'subscribe', id: 'c' }, 'invalid_message', 'c'],
        [{ type: 'subscribe', channel: 'prices', since: -1 }, 'invalid_message'],
        [{ type: 'ping', id: { nested: true } }, 'invalid_message'],
        [{ type: 'ping', id: 'x'.repeat(200) }, 'invalid_message'],
        [{ type: 'subscribe', channel: 'gossip', id: 'u1' }, 'unknown_channel', 'u1'],
        [{ type: 'unsubscribe', channel: '__proto__' }, 'unknown_channel'],
        ['{"type":"ping","__proto__":{"polluted":true},"constructor":1,"id":"p"}', 'pong'],
      ];
      for (const [frame, expected, id] of cases) {
        client.send(frame);
        const reply = await client.next();
        if (expected === 'pong') {
          assert.deepEqual(reply, { type: 'pong', id: 'p' });
          continue;
        }
        assert.equal(reply.type, 'error', `reply to ${JSON.stringify(frame)}`);
        assert.equal(reply.type === 'error' && reply.code, expected, `code for ${JSON.stringify(frame)}`);
        assert.equal(typeof (reply as { message?: unknown }).message, 'string');
        assert.equal((reply as { id?: unknown }).id, id, `id echo for ${JSON.stringify(frame)}`);
      }
      client.ws.send(Buffer.from('{"type":"ping"}'), { binary: true });
      const binaryReply = await client.next();
      assert.equal(binaryReply.type === 'error' && binaryReply.code, 'invalid_message');
      assert.deepEqual(await client.request({ type: 'ping' }), { type: 'pong', id: 'r1' });
      assert.equal(({} as Record<string, unknown>).polluted, undefined);
      assert.ok((await fx.metric('tradewire_ws_client_errors_total', { code: 'invalid_message' })) >= 12);
      assert.ok((await fx.metric('tradewire_ws_client_errors_total', { code: 'invalid_json' })) >= 1);
    });

    it('sends only text frames', async () => {
      const client = await fx.connect();
      await client.request({ type: 'subscribe', channel: 'prices' });
      await publisher.publishPriceUpdate('SOL', '1.5');
      await client.waitFor((m) => m.type === 'price' && m.price === '1.5');
      assert.equal(client.binaryFrames, 0);
    });
  });

  describe('auth and permissions', () => {
    it('authenticates a known token and answers auth_ok with the userId from the session', async () => {
      fx.sessions.add('tok-a', 7);
      const client = await fx.connect();
      assert.deepEqual(await client.request({ type: 'auth', token: 'tok-a', userId: 999 }), {
        type: 'auth_ok',
        userId: 7,
        id: 'r1',
      });
    });

    it('answers auth_failed for an unknown token, and the socket stays anonymous', async () => {
      const client = await fx.connect();
      const reply = await client.request({ type: 'auth', token: 'nobody' });
      assert.equal(reply.type === 'error' && reply.code, 'auth_failed');
      const sub = await client.request({ type: 'subscribe', channel: 'orders' });
      assert.equal(sub.type === 'error' && sub.code, 'auth_required');
    });

    it('answers auth_failed for a session already expired, and internal_error when the verifier fails', async () => {
      fx.sessions.add('tok-old', 8, { expiresAt: new Date(Date.now() - 1000) });
      const client = await fx.connect();
      const expired = await client.request({ type: 'auth', token: 'tok-old' });
      assert.equal(expired.type === 'error' && expired.code, 'auth_failed');
      fx.sessions.fail = true;
      try {
        const failed = await client.request({ type: 'auth', token: 'tok-a' });
        assert.equal(failed.type === 'error' && failed.code, 'internal_error');
        assert.doesNotMatch(JSON.stringify(failed), /database|tok-a/);
      } finally {
        fx.sessions.fail = false;
      }
    });

    it('lets anonymous sockets subscribe to prices only', async () => {
      const client = await fx.connect();
      for (const channel of ['orders', 'portfolio']) {
        const reply = await client.request({ type: 'subscribe', channel });
        assert.equal(reply.type === 'error' && reply.code, 'auth_required', channel);
      }
      assert.deepEqual(await client.request({ type: 'subscribe', channel: 'prices' }), {
        type: 'subscribed',
        channel: 'prices',
        id: 'r3',
      });
    });

    it('processes requests in order: auth then subscribe without waiting works', async () => {
      fx.sessions.add('tok-pipelined', 11);
      fx.sessions.hold();
      const client = await fx.connect();
      client.send({ type: 'auth', token: 'tok-pipelined', id: 1 });
      client.send({ type: 'subscribe', channel: 'orders', id: 2 });
      client.send({ type: 'ping', id: 3 });
      fx.sessions.release();
      assert.deepEqual(await client.next(), { type: 'auth_ok', userId: 11, id: 1 });
      assert.deepEqual(await client.next(), { type: 'subscribed', channel: 'orders', id: 2 });
      assert.deepEqual(await client.next(), { type: 'pong', id: 3 });
    });
  });

  describe('routing', () => {
    it('delivers prices to every prices subscriber, in the design shape', async () => {
      const a = await fx.connect();
      const b = await fx.connect();
      const anonymousNotSubscribed = await fx.connect();
      await a.request({ type: 'subscribe', channel: 'prices' });
      await b.request({ type: 'subscribe', channel: 'prices' });
      const event = await publisher.publishPriceUpdate('SOL', '231.45', '2025-02-02T10:00:00.000Z');
      for (const client of [a, b]) {
        const got = await client.waitFor((m) => m.type === 'price' && m.timestamp === event.timestamp);
        assert.deepEqual(got, { type: 'price', symbol: 'SOL', price: '231.45', timestamp: '2025-02-02T10:00:00.000Z' });
      }
      await anonymousNotSubscribed.barrier();
      assert.equal(anonymousNotSubscribed.ofType('price').length, 0);
    });

    it("sends order_filled and order_rejected with every field to the user's sockets only", async () => {
      const { client: mine } = await fx.connectAs(101);
      const { client: mineToo } = await fx.connectAs(101);
      const { client: theirs } = await fx.connectAs(102);
      for (const c of [mine, mineToo, theirs]) await c.request({ type: 'subscribe', channel: 'orders' });
      await publisher.publishOrderFilled({ ...order(101, 1), seq: 1 });
      await publisher.publishOrderRejected(rejection(101, 2));
      for (const c of [mine, mineToo]) {
        assert.deepEqual(await c.waitFor((m) => m.type === 'order_filled'), {
          type: 'order_filled',
          ...order(101, 1),
          seq: 1,
        });
        assert.deepEqual(await c.waitFor((m) => m.type === 'order_rejected'), {
          type: 'order_rejected',
          ...rejection(101, 2),
        });
      }
      await theirs.barrier();
      assert.equal(theirs.ofType('order_filled').length + theirs.ofType('order_rejected').length, 0);
    });

    it('delivers portfolio updates to their user only, and stops after unsubscribe', async () => {
      const { client: mine } = await fx.connectAs(201);
      const { client: theirs } = await fx.connectAs(202);
      await mine.request({ type: 'subscribe', channel: 'portfolio' });
      await theirs.request({ type: 'subscribe', channel: 'portfolio' });
      mine.skipReceived();
      const update = portfolio(201, '1000.5');
      await fx.broker.publish('trading:events:portfolio:update', JSON.stringify(update));
      assert.deepEqual(await mine.next(), { type: 'portfolio', ...update });
      assert.deepEqual(await mine.request({ type: 'unsubscribe', channel: 'portfolio' }), {
        type: 'unsubscribed',
        channel: 'portfolio',
        id: 'r3',
      });
      await fx.broker.publish('trading:events:portfolio:update', JSON.stringify(portfolio(201, '2')));
      await mine.barrier();
      await theirs.barrier();
      assert.equal(mine.ofType('portfolio').length, 1);
      assert.equal(theirs.ofType('portfolio').length, 0);
    });

    it("drops a socket's private subscriptions when it authenticates as another user", async () => {
      const { client } = await fx.connectAs(301);
      await client.request({ type: 'subscribe', channel: 'orders' });
      fx.sessions.add('tok-other-user', 302);
      await client.request({ type: 'auth', token: 'tok-other-user' });
      await publisher.publishOrderFilled(order(301, 5));
      await client.barrier();
      assert.equal(client.ofType('order_filled').length, 0);
    });

    it('subscribing twice delivers each event once', async () => {
      const { client } = await fx.connectAs(401);
      await client.request({ type: 'subscribe', channel: 'orders' });
      await client.request({ type: 'subscribe', channel: 'orders' });
      await publisher.publishOrderFilled(order(401, 9));
      await client.waitFor((m) => m.type === 'order_filled');
      await client.barrier();
      assert.equal(client.ofType('order_filled').length, 1);
    });
  });

  describe('snapshots', () => {
    it('sends the latest price of every configured and live-seen symbol right after subscribed', async () => {
      const store = createPriceStore(fx.broker);
      await store.setPrice('SOL', '100', '2025-03-01T00:00:00.000Z');
      await store.setPrice('BTC', '50000', '2025-03-01T00:00:00.000Z');
      await store.setPrice('DOGE', '0.1', '2025-03-01T00:00:00.000Z'); // neither configured nor seen live
      const watcher = await fx.connect();
      await watcher.request({ type: 'subscribe', channel: 'prices' });
      await publisher.publishPriceUpdate('ETH', '3000', '2025-03-01T00:00:01.000Z'); // seen live only
      await watcher.waitFor((m) => m.type === 'price' && m.symbol === 'ETH');

      const client = await fx.connect();
      client.send({ type: 'subscribe', channel: 'prices', id: 's' });
      assert.deepEqual(await client.next(), { type: 'subscribed', channel: 'prices', id: 's' });
      const snapshot = [await client.next(), await client.next(), await client.next()];
      const bySymbol = Object.fromEntries(snapshot.map((m) => [(m as { symbol: string }).symbol, m]));
      assert.deepEqual(Object.keys(bySymbol).sort(), ['BTC', 'ETH', 'SOL']);
      assert.deepEqual(bySymbol.BTC, {
        type: 'price',
        symbol: 'BTC',
        price: '50000',
        timestamp: '2025-03-01T00:00:00.000Z',
      });
      assert.deepEqual(bySymbol.ETH, {
        type: 'price',
        symbol: 'ETH',
        price: '3000',
        timestamp: '2025-03-01T00:00:01.000Z',
      });
      await client.barrier();
      assert.equal(client.ofType('price').length, 3);
    });

    it('prefers the newer of the stored price and the last live tick', async () => {
      const store = createPriceStore(fx.broker);
      await store.setPrice('SOL', '111', '2030-01-01T00:00:00.000Z');
      const client = await fx.connect();
      await client.request({ type: 'subscribe', channel: 'prices' });
      const sol = await client.waitFor((m) => m.type === 'price' && m.symbol === 'SOL');
      assert.equal(sol.type === 'price' && sol.price, '111');
    });

    it('merges the stored-price reads of subscriptions that start together into one', async () => {
      let reads = 0;
      let release!: () => void;
      const gate = new Promise<void>((resolve) => (release = resolve));
      class GatedBroker extends MemoryBroker {
        override async getLatestMany(keys: readonly string[]) {
          reads += 1;
          await gate;
          return super.getLatestMany(keys);
        }
      }
      const broker = new GatedBroker();
      await createPriceStore(broker).setPrice('SOL', '12');
      const other = await startGateway({ broker });
      try {
        const clients = await Promise.all(Array.from({ length: 20 }, () => other.connect()));
        for (const client of clients) client.send({ type: 'subscribe', channel: 'prices' });
        await waitFor(async () => (await other.metric('tradewire_ws_subscriptions', { channel: 'prices' })) === 20);
        release();
        for (const client of clients) {
          assert.equal((await client.next()).type, 'subscribed');
          assert.deepEqual(await client.next(), {
            type: 'price',
            symbol: 'SOL',
            price: '12',
            timestamp: (await createPriceStore(broker).getPrice('SOL'))!.timestamp,
          });
        }
        assert.equal(reads, 1);
      } finally {
        await other.close();
        await broker.close();
      }
    });

    it("sends the user's latest portfolio from the store right after subscribed", async () => {
      const { client } = await fx.connectAs(501);
      const latest = await publisher.publishPortfolioUpdate(portfolio(501, '42', 3));
      client.send({ type: 'subscribe', channel: 'portfolio', id: 'p' });
      assert.deepEqual(await client.next(), { type: 'subscribed', channel: 'portfolio', id: 'p' });
      assert.deepEqual(await client.next(), { type: 'portfolio', ...latest });
      await client.barrier();
      assert.equal(client.ofType('portfolio').length, 1);
    });

    it('falls back to loadPortfolio, never sends another user’s, and nothing when none is known', async () => {
      const loaded = portfolio(601, '7');
      const other = await startGateway({
        loadPortfolio: (userId) =>
          Promise.resolve(userId === 601 ? loaded : userId === 602 ? portfolio(999, '1') : null),
      });
      try {
        for (const [userId, expected] of [
          [601, 1],
          [602, 0],
          [603, 0],
        ] as const) {
          const { client } = await other.connectAs(userId);
          client.send({ type: 'subscribe', channel: 'portfolio', id: 'p' });
          assert.deepEqual(await client.next(), { type: 'subscribed', channel: 'portfolio', id: 'p' });
          await client.barrier();
          const got = client.ofType('portfolio');
          assert.equal(got.length, expected, `user ${userId}`);
          if (expected) assert.deepEqual(got[0], { type: 'portfolio', ...loaded });
        }
      } finally {
        await other.close();
      }
    });

    it('holds live portfolio updates that arrive while the snapshot is read, and sends them after it', async () => {
      let releaseLoad!: () => void;
      let loadStartedResolve!: () => void;
      const loadStarted = new Promise<void>((resolve) => (loadStartedResolve = resolve));
      const other = await startGateway({
        loadPortfolio: async (userId) => {
          loadStartedResolve();
          await new Promise<void>((resolve) => (releaseLoad = resolve));
          return portfolio(userId, '1', 1);
        },
      });
      try {
        const { client } = await other.connectAs(701);
        client.send({ type: 'subscribe', channel: 'portfolio', id: 'p' });
        await loadStarted;
        const live = portfolio(701, '2', 2);
        await other.broker.publish('trading:events:portfolio:update', JSON.stringify(live));
        releaseLoad();
        assert.deepEqual(await client.next(), { type: 'subscribed', channel: 'portfolio', id: 'p' });
        // The held live update (version 2) is newer than the snapshot (version 1): only it is sent.
        assert.deepEqual(await client.next(), { type: 'portfolio', ...live });
        await client.barrier();
        assert.equal(client.ofType('portfolio').length, 1);
      } finally {
        await other.close();
      }
    });
  });
});
