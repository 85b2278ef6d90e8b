import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createApi, type Api } from '@repo/api';
import { connectRedisBroker, MemoryBroker, type Broker } from '@repo/broker';
import { createSessionStore, openDatabase, type Database } from '@repo/db';
import type { ServerMessage } from '@repo/protocol';
import { redisKeys } from '@repo/redis';
import { createTestDatabase, RedisServer, TestClient } from '@repo/test-support';
import { createGateway, type Gateway } from '../src/index.ts';

/**
 * A fill before the portfolio it caused, through the real API and the real gateway on one
 * broker: many concurrent orders, and sockets that subscribe in every order (orders first,
 * portfolio first then orders with a replay, joining mid-burst). A socket subscribed to
 * `orders` must never get a portfolio before the order event whose `seq` is its `orderSeq`,
 * and every socket must end with the user's last portfolio: nothing is held forever.
 */

const USERS = 4;
const LANES = 3;
const MIN_ORDERS = 30;
/** Order events B and C replay when they join (2 per page, so many pages with live events between). */
const REPLAYED = 12;
const MAX_ORDERS = 100;
/** Per request: on a loaded machine a request may queue behind the burst's transactions. */
const REQUEST_TIMEOUT_MS = 15_000;

interface Stack {
  api: Api;
  db: Database;
  broker: Broker;
  gateway: Gateway;
  url: string;
  close(): Promise<void>;
}

/** API and gateway wired as the launcher wires them (apps/server/src/system.ts). */
async function startStack(broker: Broker, db: Database, cleanup: () => Promise<void>): Promise<Stack> {
  const api = createApi({
    db,
    broker,
    // Cheap hashing: the test is about delivery order, not passwords.
    passwordHash: { memoryKiB: 1024, passes: 1, parallelism: 1 },
    relay: { pollIntervalMs: 50, retryBaseMs: 20, retryMaxMs: 200 },
  });
  const gateway = await createGateway({
    broker,
    sessions: createSessionStore(db),
    loadPortfolio: (userId) => db.getPortfolioEvent(userId),
    history: { read: (userId, afterSeq, limit, maxBytes) => db.outbox.orderHistory(userId, afterSeq, limit, maxBytes) },
    // Small pages: a replay takes several reads, and live events keep coming between them.
    historyLimits: { pageEvents: 2 },
  });
  const port = await gateway.listen(0, '127.0.0.1');
  const price = { symbol: 'SOL', price: '100', timestamp: new Date().toISOString() };
  await broker.setLatest(redisKeys.price('SOL'), JSON.stringify(price));
  return {
    api,
    db,
    broker,
    gateway,
    url: `ws://127.0.0.1:${port}`,
    async close() {
      await gateway.close();
      await api.close();
      await db.close();
      await broker.close();
      await cleanup();
    },
  };
}

async function register(api: Api, name: string): Promise<{ userId: number; token: string }> {
  const response = await api.app.inject({
    method: 'POST',
    url: '/auth/register',
    payload: { username: name, password: 'password123' },
  });
  assert.equal(response.statusCode, 201, response.body);
  return response.json();
}

async function placeOrder(api: Api, token: string, side: 'buy' | 'sell', size: string): Promise<void> {
  const response = await api.app.inject({
    method: 'POST',
    url: '/orders',
    headers: { authorization: `Bearer ${token}` },
    payload: { symbol: 'SOL', side, size },
  });
  assert.ok(response.statusCode === 201 || response.statusCode === 422, response.body);
}

/**
 * Portfolios a socket got, once subscribed to `orders`, before the order event they reflect.
 * The subscription owes the socket the order events after its start: `since` when recovered,
 * else the `seq` it answered. (What arrives before the `subscribed` reply may have been sent
 * before the gateway read the request, so the check starts at the reply.)
 */
function portfoliosBeforeTheirFill(messages: readonly ServerMessage[], since?: number): string[] {
  const problems: string[] = [];
  let start: number | null = null;
  const seen = new Set<number>();
  for (const message of messages) {
    if (message.type === 'subscribed' && message.channel === 'orders') {
      start = message.recovered === true ? since! : message.seq!;
    } else if (message.type === 'order_filled' || message.type === 'order_rejected') {
      seen.add(message.seq!);
    } else if (message.type === 'portfolio' && start !== null && message.orderSeq !== undefined) {
      if (message.orderSeq > start && !seen.has(message.orderSeq)) {
        problems.push(`portfolio v${message.version} (orderSeq ${message.orderSeq}) before its order event`);
      }
    }
  }
  return problems;
}

/** The order `seq`s a socket got, in arrival order. */
const orderSeqs = (client: TestClient) =>
  client.received.flatMap((m) => (m.type === 'order_filled' || m.type === 'order_rejected' ? [m.seq!] : []));

function fillBeforePortfolioSuite(name: string, open: () => Promise<Stack>): void {
  describe(`a fill before the portfolio it caused: ${name}`, () => {
    let stack: Stack;
    before(async () => {
      stack = await open();
    });
    after(() => stack.close());

    it('holds each portfolio until its order event went out, on every socket, and ends with the last one', async () => {
      const users = await Promise.all(
        Array.from({ length: USERS }, (_, i) => register(stack.api, `fbp_${process.pid}_${Date.now()}_${i}`)),
      );
      const connect = async (token: string) => {
        const client = await TestClient.connect(stack.url);
        await client.request({ type: 'auth', token }, REQUEST_TIMEOUT_MS);
        return client;
      };
      // A: orders, then portfolio, from the start. B: portfolio only, orders (with a replay) mid-burst.
      const sockets = await Promise.all(
        users.map(async ({ token }) => {
          const a = await connect(token);
          await a.request({ type: 'subscribe', channel: 'orders' }, REQUEST_TIMEOUT_MS);
          await a.request({ type: 'subscribe', channel: 'portfolio' }, REQUEST_TIMEOUT_MS);
          const b = await connect(token);
          await b.request({ type: 'subscribe', channel: 'portfolio' }, REQUEST_TIMEOUT_MS);
          return { a, b, c: null as TestClient | null };
        }),
      );

      // Each user places orders over LANES concurrent lanes, all users at once, and keeps on until
      // the mid-burst sockets have joined (at least MIN_ORDERS, at most MAX_ORDERS per user).
      let joined = false;
      let stopped = false;
      const burst = Promise.all(
        users.flatMap(({ token }) => {
          let placed = 0;
          return Array.from({ length: LANES }, async () => {
            while (!stopped && (!joined || placed < MIN_ORDERS) && placed < MAX_ORDERS) {
              const i = (placed += 1);
              // Mostly buys; every fourth a sell of what was bought; every seventh rejected (too large).
              await placeOrder(stack.api, token, i % 4 === 0 ? 'sell' : 'buy', i % 7 === 0 ? '1000000' : '1');
            }
          });
        }),
      );
      // Handled at once (it is awaited below): a failure elsewhere must not leave it unhandled.
      burst.catch(() => {});
      try {
        await Promise.all(
          sockets.map(({ a }) => a.waitFor((m) => m.type === 'order_filled' && m.seq! >= REPLAYED, REQUEST_TIMEOUT_MS)),
        );
        // Mid-burst: B starts its order stream with a replay while live portfolios keep coming;
        // C joins, replays, then subscribes to the portfolio.
        await Promise.all(
          sockets.map(async (socket, i) => {
            await socket.b.request({ type: 'subscribe', channel: 'orders', since: 0 }, REQUEST_TIMEOUT_MS);
            socket.c = await connect(users[i]!.token);
            await socket.c.request({ type: 'subscribe', channel: 'orders', since: 0 }, REQUEST_TIMEOUT_MS);
            await socket.c.request({ type: 'subscribe', channel: 'portfolio' }, REQUEST_TIMEOUT_MS);
          }),
        );
        joined = true;
      } catch (err) {
        // No order may still be in flight when the stack closes.
        stopped = true;
        await burst.catch(() => {});
        throw err;
      }
      await burst;

      for (const [i, { userId }] of users.entries()) {
        const final = await stack.db.getPortfolioEvent(userId);
        const lastSeq = (await stack.db.outbox.orderHistory(userId, 0, 1, 1)).latestSeq;
        assert.ok(lastSeq >= MIN_ORDERS && lastSeq < MAX_ORDERS, `${lastSeq} orders, the burst outlasted the joins`);
        const { a, b, c } = sockets[i]!;
        for (const [label, client, since] of [
          ['A', a, undefined],
          ['B', b, 0],
          ['C', c!, 0],
        ] as const) {
          await client.waitFor((m) => m.type === 'portfolio' && m.version === final!.version, 10_000, 'last portfolio');
          await client.waitFor(
            (m) => (m.type === 'order_filled' || m.type === 'order_rejected') && m.seq === lastSeq,
            10_000,
            'last order event',
          );
          await client.barrier();
          assert.deepEqual(portfoliosBeforeTheirFill(client.received, since), [], `user ${userId} socket ${label}`);
          const seqs = orderSeqs(client);
          assert.deepEqual(
            seqs,
            [...seqs].sort((x, y) => x - y),
            `user ${userId} socket ${label}: order events in seq order`,
          );
          assert.equal(new Set(seqs).size, seqs.length, `user ${userId} socket ${label}: no duplicate`);
        }
        for (const client of [a, b, c!]) await client.close();
      }
    });
  });
}

fillBeforePortfolioSuite('in-process broker, PGlite', async () =>
  startStack(new MemoryBroker(), await openDatabase({ dataDir: 'memory://' }), () => Promise.resolve()),
);

let redis: RedisServer | undefined;
fillBeforePortfolioSuite('Redis, PostgreSQL', async () => {
  redis = await RedisServer.start();
  const pg = await createTestDatabase();
  return startStack(await connectRedisBroker(redis.url), await openDatabase({ url: pg.url }), async () => {
    await pg.drop();
    await redis?.stop();
  });
});
