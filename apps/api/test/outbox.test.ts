import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { EVENT_CHANNELS, connectRedisBroker, createEventPublisher, type Broker } from '@repo/broker';
import { openDatabase, type Database } from '@repo/db';
import { decodeEvent } from '@repo/events';
import { createRedisClient, redisKeys } from '@repo/redis';
import { createTestDatabase, RedisServer, nextValue, waitFor } from '@repo/test-support';
import { bearer, capturingLogger, makeApi, register, setPrice } from './support.ts';

/**
 * The transactional outbox on real PostgreSQL and a real redis-server of our own (so it can be
 * killed): events go out in commit order with seq 1..n, orders commit while Redis is down, and
 * the events follow once it is back or once a relay starts again.
 */

interface Received {
  kind: 'order_filled' | 'order_rejected' | 'portfolio';
  userId: number;
  orderId?: number;
  seq?: number;
  version?: number;
}

let pg: Awaited<ReturnType<typeof createTestDatabase>>;
let db: Database;
let redis: RedisServer;

before(async () => {
  pg = await createTestDatabase();
  db = await openDatabase({ url: pg.url });
  redis = await RedisServer.start();
});

after(async () => {
  await db?.close();
  await pg?.drop();
  await redis?.stop();
});

/** Subscribes on `broker` to the three private event channels and decodes what arrives. */
async function listen(broker: Broker): Promise<Received[]> {
  const received: Received[] = [];
  for (const kind of ['order_filled', 'order_rejected', 'portfolio'] as const) {
    await broker.subscribe(EVENT_CHANNELS[kind], (raw) => {
      const decoded = decodeEvent(kind, raw);
      assert.ok(decoded.ok, `published ${kind} fails its schema: ${raw}`);
      received.push({ kind, ...(decoded.event as Omit<Received, 'kind'>) });
    });
  }
  return received;
}

const orderEvents = (received: Received[], userId: number) =>
  received.filter((r) => r.userId === userId && r.kind !== 'portfolio');

const portfolioVersions = (received: Received[], userId: number) =>
  received.filter((r) => r.userId === userId && r.kind === 'portfolio').map((r) => r.version);

/** POST /orders: a market buy of 1 SOL for the holder of `token`. */
function buyOneSol(api: ReturnType<typeof makeApi>, token: string) {
  return api.app.inject({
    method: 'POST',
    url: '/orders',
    headers: bearer(token),
    payload: { symbol: 'SOL', side: 'buy', size: '1' },
  });
}

/** The relay's publish failures of `reason`, as `GET /metrics` shows them. */
async function publishErrors(api: ReturnType<typeof makeApi>, reason: string): Promise<number> {
  const metrics = (await api.app.inject({ method: 'GET', url: '/metrics' })).body;
  const match = new RegExp(`tradewire_api_outbox_publish_errors_total\\{reason="${reason}"\\} (\\d+)`).exec(metrics);
  return match ? Number(match[1]) : 0;
}

/**
 * Publishes an order event for `markerUser` on `broker`'s connection: it reaches the one
 * subscriber connection after everything published on it before, duplicates included.
 */
async function publishMarker(broker: Broker, markerUser: number): Promise<void> {
  await createEventPublisher(broker).publishOrderFilled({
    userId: markerUser,
    orderId: 1,
    side: 'buy',
    baseAsset: 'SOL',
    quoteAsset: 'USD',
    executedPrice: '1',
    executedSize: '1',
    fee: '0',
    timestamp: new Date().toISOString(),
    seq: 1,
  });
}

/** A filled buy of `size` SOL at 10 USD, placed straight in the database (no session). */
function buy(userId: number, size: string) {
  return db.orders.place({
    userId,
    symbol: 'SOL',
    quoteAsset: 'USD',
    side: 'buy',
    size,
    price: '10',
    feeRate: '0.0001',
    session: null,
  });
}

describe('outbox relay', () => {
  it('publishes each order event once the transaction commits, in order, seq 1..n', async () => {
    const broker = await connectRedisBroker(redis.url);
    const received = await listen(broker);
    const api = makeApi(db, broker);
    try {
      await setPrice(broker, 'SOL', '100');
      const { userId, token } = await register(api);
      // Concurrent buys and sells, some too big to fill: fills and rejections interleave.
      const responses = await Promise.all(
        Array.from({ length: 12 }, (_, i) =>
          api.app.inject({
            method: 'POST',
            url: '/orders',
            headers: bearer(token),
            payload: { symbol: 'SOL', side: i % 3 === 2 ? 'sell' : 'buy', size: i % 4 === 3 ? '1000' : '10' },
          }),
        ),
      );
      const bodies = responses.map((r) => r.json<{ orderId: number; seq: number; status: string }>());
      await waitFor(() => orderEvents(received, userId).length === 12, { timeoutMs: 10_000, what: '12 order events' });
      const events = orderEvents(received, userId);
      assert.deepEqual(
        events.map((e) => e.seq),
        Array.from({ length: 12 }, (_, i) => i + 1),
        'seq 1..12 in order',
      );
      // Each HTTP reply matches the event with its seq.
      for (const body of bodies) {
        const event = events.find((e) => e.seq === body.seq);
        assert.equal(event?.orderId, body.orderId);
        assert.equal(event?.kind, body.status === 'filled' ? 'order_filled' : 'order_rejected');
      }
      const filled = bodies.filter((b) => b.status === 'filled').length;
      await waitFor(() => received.filter((r) => r.userId === userId && r.kind === 'portfolio').length === filled);
      const versions = received.filter((r) => r.userId === userId && r.kind === 'portfolio').map((r) => r.version);
      assert.deepEqual(
        versions,
        Array.from({ length: filled }, (_, i) => i + 1),
        'portfolio versions 1..n in order',
      );
      await waitFor(async () => (await db.outbox.backlog()) === 0);
    } finally {
      await api.close();
      await broker.close();
    }
  });

  it('commits orders while Redis is down, without waiting, and publishes them once it is back', async () => {
    const own = await RedisServer.start();
    const broker = await connectRedisBroker(own.url, { baseDelayMs: 20, maxDelayMs: 200 });
    const received = await listen(broker);
    const api = makeApi(db, broker);
    try {
      await setPrice(broker, 'SOL', '50');
      const { userId, token } = await register(api);
      const order = () => buyOneSol(api, token);
      assert.equal((await order()).statusCode, 201);
      await waitFor(() => orderEvents(received, userId).length === 1);
      // Its portfolio event too must be out and marked, or its mark could land mid-count below.
      await waitFor(async () => (await db.outbox.backlog()) === 0);

      const down = nextValue<boolean>((cb) => broker.onStatusChange(cb));
      await own.kill();
      assert.equal(await down, false);
      const backlogBefore = await db.outbox.backlog();
      for (let i = 0; i < 5; i++) {
        const started = Date.now();
        const response = await order();
        // The price comes from the last read; the events wait in the outbox.
        assert.equal(response.statusCode, 201, response.body);
        // What this guards against is unbounded: a publish queued until Redis returns. The bound
        // is loose so that a loaded CI machine does not trip it.
        assert.ok(Date.now() - started < 4000, `order took ${Date.now() - started} ms with Redis down`);
      }
      assert.equal(await db.outbox.backlog(), backlogBefore + 10, 'five fills, each with its portfolio event');
      const health = (await api.app.inject({ method: 'GET', url: '/health' })).json<{
        status: string;
        broker: string;
      }>();
      assert.equal(health.broker, 'down');
      assert.notEqual(health.status, 'ok');
      assert.equal(orderEvents(received, userId).length, 1);

      await own.restart();
      await waitFor(() => orderEvents(received, userId).length === 6, {
        timeoutMs: 15_000,
        what: 'events after Redis restart',
      });
      assert.deepEqual(
        orderEvents(received, userId).map((e) => e.seq),
        [1, 2, 3, 4, 5, 6],
      );
      await waitFor(async () => (await db.outbox.backlog()) === 0, { timeoutMs: 5000 });
      const metrics = (await api.app.inject({ method: 'GET', url: '/metrics' })).body;
      assert.match(metrics, /tradewire_api_outbox_publish_errors_total\{reason="broker_unavailable"\} [1-9]/);
    } finally {
      await api.close();
      await broker.close();
      await own.stop();
    }
  });

  it('notices a Redis that stops answering, and publishes once it answers again, in order', async () => {
    const own = await RedisServer.start();
    const { logger, lines } = capturingLogger();
    const broker = await connectRedisBroker(own.url, { logger, baseDelayMs: 20, maxDelayMs: 200 });
    const received = await listen(broker);
    const api = makeApi(db, broker);
    try {
      await setPrice(broker, 'SOL', '50');
      const { userId, token } = await register(api);
      const order = () => buyOneSol(api, token);
      assert.equal((await order()).statusCode, 201);
      await waitFor(() => portfolioVersions(received, userId).length === 1);
      await waitFor(async () => (await db.outbox.backlog()) === 0);

      // SIGSTOP: the kernel still accepts and acknowledges, nothing is answered. Before the
      // relay had a deadline and the connections a liveness check, the relay's PUBLISH waited
      // for ever, the pass never ended and the broker said it was up.
      const down = nextValue<boolean>((cb) => broker.onStatusChange(cb), { timeoutMs: 20_000, what: 'broker down' });
      own.pause();
      // Orders go on committing, and each one's price read writes to the publisher's
      // connection: it never looks idle, so only the relay's own deadline ends the pass.
      let placed = 0;
      const deadline = Date.now() + 20_000;
      while ((await publishErrors(api, 'broker_timeout')) === 0) {
        assert.ok(Date.now() < deadline, 'the relay never gave up on a publish Redis did not answer');
        assert.equal((await order()).statusCode, 201);
        placed++;
      }
      assert.equal(await down, false);
      // Left alone, both connections see nothing for the idle timeout and are destroyed, with
      // what was in flight on them, so nothing of it is delivered when Redis wakes up.
      const destroyed = (role: string) =>
        lines.some((l) => l.args[1] === 'redis connection error' && (l.args[0] as { role?: string }).role === role);
      await waitFor(() => destroyed('publisher') && destroyed('subscriber'), {
        timeoutMs: 15_000,
        what: 'both silent connections destroyed',
      });
      await api.relay.idle();
      assert.equal(orderEvents(received, userId).length, 1);
      assert.equal(await db.outbox.backlog(), 2 * placed, 'every fill since, with its portfolio, waits');

      own.resume();
      await waitFor(() => portfolioVersions(received, userId).length >= placed + 1, {
        timeoutMs: 15_000,
        what: 'events after Redis answers again',
      });
      await waitFor(async () => (await db.outbox.backlog()) === 0);
      const all = Array.from({ length: placed + 1 }, (_, i) => i + 1);
      assert.deepEqual(
        orderEvents(received, userId).map((e) => e.seq),
        all,
      );
      assert.deepEqual(portfolioVersions(received, userId), all);
    } finally {
      own.resume();
      await api.close();
      await broker.close();
      await own.stop();
    }
  });

  it("publishes other users' events past a key Redis refuses, and says what Redis said", async () => {
    const broker = await connectRedisBroker(redis.url);
    const received = await listen(broker);
    const raw = createRedisClient(redis.url);
    raw.on('error', () => {});
    await raw.connect();
    const { logger, lines } = capturingLogger();
    try {
      await waitFor(async () => (await db.outbox.backlog()) === 0, { what: 'earlier tests drained' });
      const user = (name: string) =>
        db.users.create({
          username: `${name}_${process.pid}`,
          passwordHash: 'x',
          balances: [{ asset: 'USD', available: '1000' }],
          positionAssets: ['SOL'],
        });
      const { userId: stuck } = await user('wrongtype');
      const { userId: other } = await user('bystander');
      // Not a string: the portfolio's compare-and-set answers WRONGTYPE, every time.
      await raw.hSet(redisKeys.portfolio(stuck), 'x', '1');
      for (let i = 0; i < 3; i++) await buy(stuck, '1');
      for (let i = 0; i < 2; i++) await buy(other, '1');
      // The stuck user's 6 rows fill a batch: nothing behind them would ever be read if they stayed.
      const api = makeApi(db, broker, {
        logger,
        relay: { batchSize: 4, pollIntervalMs: 50, retryBaseMs: 20, retryMaxMs: 200 },
      });
      try {
        await waitFor(() => orderEvents(received, other).length === 2, { what: "the other user's events" });
        assert.deepEqual(
          orderEvents(received, other).map((e) => e.seq),
          [1, 2],
        );
        await waitFor(() => portfolioVersions(received, other).length === 2);
        assert.deepEqual(portfolioVersions(received, other), [1, 2]);
        // The refused user's events go out too, portfolios included (only the store fails).
        assert.deepEqual(
          orderEvents(received, stuck).map((e) => e.seq),
          [1, 2, 3],
        );
        await waitFor(() => portfolioVersions(received, stuck).length === 3);
        assert.deepEqual(portfolioVersions(received, stuck), [1, 2, 3]);
        await waitFor(async () => (await db.outbox.backlog()) === 0, { what: 'every row marked' });

        assert.equal(await publishErrors(api, 'broker_rejected'), 3);
        assert.equal(await publishErrors(api, 'broker_unavailable'), 0);
        const refusals = lines.filter((l) => l.level === 'error' && JSON.stringify(l.args).includes('WRONGTYPE'));
        assert.equal(refusals.length, 3, JSON.stringify(lines));
      } finally {
        await api.close();
      }
    } finally {
      await raw.quit();
      await broker.close();
    }
  });

  it('holds every event while Redis refuses all writes (OOM), says so, and goes on in order after', async () => {
    const own = await RedisServer.start();
    const broker = await connectRedisBroker(own.url, { baseDelayMs: 20, maxDelayMs: 200 });
    const received = await listen(broker);
    const raw = createRedisClient(own.url);
    raw.on('error', () => {});
    await raw.connect();
    const { logger, lines } = capturingLogger();
    try {
      await waitFor(async () => (await db.outbox.backlog()) === 0, { what: 'earlier tests drained' });
      const { userId } = await db.users.create({
        username: `oom_${process.pid}`,
        passwordHash: 'x',
        balances: [{ asset: 'USD', available: '1000' }],
        positionAssets: ['SOL'],
      });
      await raw.configSet({ 'maxmemory-policy': 'noeviction', maxmemory: '1' });
      for (let i = 0; i < 2; i++) await buy(userId, '1');
      const api = makeApi(db, broker, { logger });
      try {
        await waitFor(async () => (await publishErrors(api, 'broker_error')) >= 2, { what: 'refused writes counted' });
        assert.equal(await publishErrors(api, 'broker_unavailable'), 0);
        assert.equal(await publishErrors(api, 'broker_rejected'), 0, 'not skipped: it is no one row');
        assert.ok(
          lines.some((l) => l.level === 'error' && JSON.stringify(l.args).includes('OOM')),
          'the log says what Redis said',
        );
        // The fill went out (PUBLISH is allowed at OOM); its portfolio is held, and what follows it.
        assert.deepEqual(
          orderEvents(received, userId).map((e) => e.seq),
          [1],
        );
        assert.deepEqual(portfolioVersions(received, userId), []);

        await raw.configSet({ maxmemory: '0' });
        await waitFor(async () => (await db.outbox.backlog()) === 0, { what: 'the backlog after OOM' });
        await waitFor(() => portfolioVersions(received, userId).length === 2);
        assert.deepEqual(
          orderEvents(received, userId).map((e) => e.seq),
          [1, 2],
        );
        assert.deepEqual(portfolioVersions(received, userId), [1, 2]);
      } finally {
        await api.close();
      }
    } finally {
      await raw.quit();
      await broker.close();
      await own.stop();
    }
  });

  it('resumes after a crash: events committed but never published go out when a relay starts', async () => {
    const broker = await connectRedisBroker(redis.url);
    const received = await listen(broker);
    try {
      // Committed by a process that died before its relay ran: rows wait in the outbox.
      const { userId } = await db.users.create({
        username: `crashed_${process.pid}`,
        passwordHash: 'x',
        balances: [{ asset: 'USD', available: '1000' }],
        positionAssets: ['SOL'],
      });
      for (const size of ['1', '2', '3']) {
        await buy(userId, size);
      }
      assert.ok((await db.outbox.backlog()) >= 6);
      assert.equal(orderEvents(received, userId).length, 0);

      const api = makeApi(db, broker);
      try {
        await waitFor(() => orderEvents(received, userId).length === 3, { timeoutMs: 10_000, what: 'resumed events' });
        assert.deepEqual(
          orderEvents(received, userId).map((e) => e.seq),
          [1, 2, 3],
        );
        await waitFor(async () => (await db.outbox.backlog()) === 0);
      } finally {
        await api.close();
      }
    } finally {
      await broker.close();
    }
  });

  it("publishes an order's events from the order itself, each once, while reads of the outbox race it", async () => {
    const broker = await connectRedisBroker(redis.url);
    const received = await listen(broker);
    // The poll reads the outbox every 5 ms for anything recorded (no grace), and a kick after
    // every order reads it too: each event is both handed over and found by those reads.
    const api = makeApi(db, broker, { relay: { pollIntervalMs: 5, sweepGraceMs: 1 } });
    try {
      await setPrice(broker, 'SOL', '10');
      const users = await Promise.all(Array.from({ length: 4 }, () => register(api)));
      const orders = users.flatMap(({ token }) =>
        Array.from({ length: 10 }, () => {
          const placed = buyOneSol(api, token);
          void placed.then(() => api.relay.kick());
          return placed;
        }),
      );
      for (const response of await Promise.all(orders)) assert.equal(response.statusCode, 201, response.body);
      await waitFor(async () => (await db.outbox.backlog()) === 0, { what: 'every event marked' });
      await api.relay.idle();
      const markerUser = users[0]!.userId + 1_000_000;
      await publishMarker(broker, markerUser);
      await waitFor(() => received.some((r) => r.userId === markerUser), { what: 'the marker' });
      for (const { userId } of users) {
        assert.deepEqual(
          orderEvents(received, userId).map((e) => e.seq),
          Array.from({ length: 10 }, (_, i) => i + 1),
          `user ${userId}: seq 1..10, each once, in order`,
        );
        assert.deepEqual(
          portfolioVersions(received, userId),
          Array.from({ length: 10 }, (_, i) => i + 1),
        );
      }
    } finally {
      await api.close();
      await broker.close();
    }
  });

  it('holds back handed-over events while it reads a backlog, so none overtakes an older event', async () => {
    const broker = await connectRedisBroker(redis.url);
    const received = await listen(broker);
    try {
      await setPrice(broker, 'SOL', '10');
      const first = makeApi(db, broker);
      const { userId, token } = await register(first);
      await first.close();
      // 60 orders (120 events) committed while no relay ran: the next one starts with a backlog.
      for (let i = 0; i < 60; i++) await buy(userId, '1');
      // It reads the backlog two rows at a time while new orders of the same user come in.
      const api = makeApi(db, broker, { relay: { batchSize: 2, pollIntervalMs: 60_000 } });
      try {
        for (let i = 0; i < 3; i++) assert.equal((await buyOneSol(api, token)).statusCode, 201);
        await waitFor(() => orderEvents(received, userId).length >= 63, { timeoutMs: 15_000, what: '63 events' });
        assert.deepEqual(
          orderEvents(received, userId).map((e) => e.seq),
          Array.from({ length: 63 }, (_, i) => i + 1),
        );
        assert.deepEqual(
          portfolioVersions(received, userId),
          Array.from({ length: 63 }, (_, i) => i + 1),
        );
      } finally {
        await api.close();
      }
    } finally {
      await broker.close();
    }
  });

  it('publishes events left unpublished by another process once they are past the grace, with no kick', async () => {
    const broker = await connectRedisBroker(redis.url);
    const received = await listen(broker);
    const api = makeApi(db, broker, { relay: { pollIntervalMs: 50, sweepGraceMs: 400 } });
    try {
      await api.relay.idle();
      // Committed by another process, which died before publishing: nobody hands them over.
      const { userId } = await db.users.create({
        username: `leftover_${process.pid}`,
        passwordHash: 'x',
        balances: [{ asset: 'USD', available: '1000' }],
        positionAssets: ['SOL'],
      });
      const recordedAt = Date.now();
      await buy(userId, '1');
      await buy(userId, '2');
      await waitFor(() => orderEvents(received, userId).length === 2, { timeoutMs: 10_000, what: 'the leftovers' });
      // Not before the grace: until then they belong to the process that recorded them.
      assert.ok(Date.now() - recordedAt >= 400, `published after ${Date.now() - recordedAt} ms`);
      assert.deepEqual(
        orderEvents(received, userId).map((e) => e.seq),
        [1, 2],
      );
      await waitFor(async () => (await db.outbox.backlog()) === 0, { what: 'marked' });
    } finally {
      await api.close();
      await broker.close();
    }
  });

  it('publishes a backlog batch after batch, each event once, and marks every one', async () => {
    const broker = await connectRedisBroker(redis.url);
    const received = await listen(broker);
    try {
      await waitFor(async () => (await db.outbox.backlog()) === 0, { what: 'earlier tests drained' });
      const { userId } = await db.users.create({
        username: `backlog_${process.pid}`,
        passwordHash: 'x',
        balances: [{ asset: 'USD', available: '1000' }],
        positionAssets: ['SOL'],
      });
      // 11 orders, 22 events: batches of 4 follow each other (each read marks the batch before).
      for (let i = 0; i < 11; i++) {
        await buy(userId, '1');
      }
      const api = makeApi(db, broker, { relay: { batchSize: 4, pollIntervalMs: 60_000 } });
      try {
        await waitFor(() => received.filter((r) => r.userId === userId).length >= 22, { what: '22 events' });
        await waitFor(async () => (await db.outbox.backlog()) === 0, { what: 'every event marked' });
        await api.relay.idle();
        // A marker published on the relay's connection after its last publish reaches the one
        // subscriber connection after everything the relay sent: any duplicate is in by then.
        const markerUser = userId + 1_000_000;
        await publishMarker(broker, markerUser);
        await waitFor(() => received.some((r) => r.userId === markerUser), { what: 'the marker' });
        // Nothing went out twice: a pass marks what it published before it reads again.
        const mine = received.filter((r) => r.userId === userId);
        assert.deepEqual(
          mine.filter((r) => r.kind === 'order_filled').map((r) => r.seq),
          Array.from({ length: 11 }, (_, i) => i + 1),
        );
        assert.deepEqual(
          mine.filter((r) => r.kind === 'portfolio').map((r) => r.version),
          Array.from({ length: 11 }, (_, i) => i + 1),
        );
      } finally {
        await api.close();
      }
    } finally {
      await broker.close();
    }
  });
});

describe('orders on PostgreSQL', () => {
  it('fills exactly the concurrent orders that fit across two API processes on one database', async () => {
    const broker = await connectRedisBroker(redis.url);
    // A second pool on the same database stands in for a second API process.
    const otherDb = await openDatabase({ url: pg.url });
    const apiA = makeApi(db, broker);
    const apiB = makeApi(otherDb, broker);
    try {
      await setPrice(broker, 'SOL', '1000');
      const { userId, token } = await register(apiA);
      const responses = await Promise.all(
        Array.from({ length: 20 }, (_, i) =>
          (i % 2 ? apiA : apiB).app.inject({
            method: 'POST',
            url: '/orders',
            headers: bearer(token),
            payload: { symbol: 'SOL', side: 'buy', size: '1' },
          }),
        ),
      );
      assert.equal(responses.filter((r) => r.statusCode === 201).length, 9);
      assert.equal(responses.filter((r) => r.statusCode === 422).length, 11);
      const seqs = responses.map((r) => r.json<{ seq: number }>().seq).sort((a, b) => a - b);
      assert.deepEqual(
        seqs,
        Array.from({ length: 20 }, (_, i) => i + 1),
      );
      const portfolio = await db.portfolio.get(userId);
      assert.deepEqual(portfolio?.balances, [{ asset: 'USD', available: '999.1', locked: '0' }]);
      assert.deepEqual(portfolio?.positions, [{ asset: 'SOL', size: '9', avgEntryPrice: '1000' }]);

      // Logout on one process is seen by the other at once (same session store).
      assert.equal(
        (await apiB.app.inject({ method: 'POST', url: '/auth/logout', headers: bearer(token) })).statusCode,
        204,
      );
      assert.equal(
        (await apiA.app.inject({ method: 'GET', url: '/portfolio', headers: bearer(token) })).statusCode,
        401,
      );
    } finally {
      await apiA.close();
      await apiB.close();
      await otherDb.close();
      await broker.close();
    }
  });
});
