import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import type { PortfolioMessage, PriceMessage } from '@repo/protocol';
import { connectRedisBroker } from '@repo/broker';
import { redisKeys } from '@repo/redis';
import { freePort, createTestDatabase, RedisServer, TradewireProcess, TestClient } from '@repo/test-support';
import { json as harnessJson } from './fault-harness.ts';

/**
 * The design's two data flows, end to end through real processes started as `npm start`
 * starts them: once all-in-one on embedded defaults, once as three processes on Redis and
 * PostgreSQL.
 */

/** The flows wait as long as a slow start takes; the fault tests' 5 s cut-off is not the point here. */
const json = <T = unknown>(url: string, init: RequestInit & { token?: string } = {}) =>
  harnessJson<T>(url, { timeoutMs: 60_000, ...init });

async function orderFilledFlow(api: string, ws: string, check?: (orderId: number) => Promise<Record<string, string>>) {
  const username = `u${Date.now().toString(36)}${Math.floor(Math.random() * 1e6)}`;
  const reg = await json(`${api}/auth/register`, {
    method: 'POST',
    body: JSON.stringify({ username, password: 'correct horse' }),
  });
  assert.equal(reg.status, 201, JSON.stringify(reg.body));
  const { token, userId } = reg.body as { token: string; userId: number };

  const inbox = await TestClient.connect(ws);
  try {
    assert.deepEqual(await inbox.request({ type: 'auth', token }), { type: 'auth_ok', userId, id: 'r1' });
    assert.equal((await inbox.request({ type: 'subscribe', channel: 'orders' })).type, 'subscribed');
    assert.equal((await inbox.request({ type: 'subscribe', channel: 'portfolio' })).type, 'subscribed');

    const order = await json(`${api}/orders`, {
      method: 'POST',
      token,
      body: JSON.stringify({ symbol: 'SOL', side: 'buy', size: '2.5' }),
    });
    assert.equal(order.status, 201, JSON.stringify(order.body));
    const reply = order.body as {
      orderId: number;
      executedPrice: string;
      executedSize: string;
      fee: string;
      status: string;
    };
    assert.equal(reply.status, 'filled');

    const filled = await inbox.waitFor((m) => m.type === 'order_filled', 10_000, 'order_filled');
    assert.equal(filled.orderId, reply.orderId);
    assert.equal(filled.userId, userId);
    assert.equal(filled.executedPrice, reply.executedPrice);
    assert.equal(filled.executedSize, '2.5');
    assert.equal(filled.executedSize, reply.executedSize);
    assert.equal(filled.fee, reply.fee);
    assert.equal(filled.side, 'buy');
    assert.equal(filled.baseAsset, 'SOL');
    assert.equal(filled.quoteAsset, 'USD');

    const filledIndex = inbox.received.indexOf(filled);
    const portfolio = await inbox.waitFor(
      (m): m is PortfolioMessage => m.type === 'portfolio' && inbox.received.indexOf(m) > filledIndex,
      10_000,
      'portfolio after the fill',
    );
    const rest = await json<{ balances: unknown; positions: unknown }>(`${api}/portfolio`, { token });
    assert.deepEqual(
      { balances: portfolio.balances, positions: portfolio.positions },
      { balances: rest.body.balances, positions: rest.body.positions },
    );
    const sol = (portfolio.positions as { asset: string; size: string }[]).find((p) => p.asset === 'SOL');
    assert.equal(sol?.size, '2.5');

    if (check) {
      const row = await check(reply.orderId);
      assert.equal(row.executed_price, reply.executedPrice);
      assert.equal(row.executed_size, reply.executedSize);
      assert.equal(row.fee, reply.fee);
    }
  } finally {
    void inbox.close();
  }
}

async function priceUpdateFlow(api: string, ws: string) {
  const inbox = await TestClient.connect(ws);
  try {
    assert.equal((await inbox.request({ type: 'subscribe', channel: 'prices' })).type, 'subscribed');
    const subscribedAt = inbox.received.length;
    // A live tick (not the snapshot): one received after `subscribed` whose timestamp is new. Both
    // of SOL: the snapshot can hold SOL's new tick beside the other symbols' older ones.
    const first = await inbox.waitFor(
      (m): m is PriceMessage => m.type === 'price' && m.symbol === 'SOL' && inbox.received.indexOf(m) >= subscribedAt,
      10_000,
      'price',
    );
    const second = await inbox.waitFor(
      (m): m is PriceMessage =>
        m.type === 'price' &&
        m.symbol === 'SOL' &&
        m.timestamp !== first.timestamp &&
        inbox.received.indexOf(m) > inbox.received.indexOf(first),
      10_000,
      'second price',
    );
    assert.equal(second.symbol, 'SOL');
    assert.match(String(second.price), /^\d+\.\d{2}$/);
    const prices = (await json(`${api}/prices`)).body as { symbol: string; price: string; timestamp: string }[];
    const sol = prices.find((p) => p.symbol === 'SOL');
    assert.ok(sol, 'GET /prices lists SOL');
    // The REST price is one the socket receives too (the same tick, or a later one it is about to get).
    await inbox.waitFor(
      (m) => m.type === 'price' && m.timestamp === sol.timestamp && m.price === sol.price,
      10_000,
      'the GET /prices tick',
    );
  } finally {
    void inbox.close();
  }
}

describe('all-in-one on embedded defaults (npm start)', () => {
  let proc: TradewireProcess;
  let api: string;
  let ws: string;
  let dataDir: string;

  before(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'tradewire-'));
    proc = new TradewireProcess([], {
      PORT: String(await freePort()),
      WS_PORT: String(await freePort()),
      DATA_DIR: dataDir,
      PRICE_INTERVAL_MS: '100',
      REDIS_URL: '',
      DATABASE_URL: '',
    });
    const ready = await proc.ready;
    api = ready.api!;
    ws = ready.ws!;
  });

  after(async () => {
    await proc?.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('runs the Order Filled Flow', async () => {
    await orderFilledFlow(api, ws);
  });

  it('runs the Price Update Flow', async () => {
    await priceUpdateFlow(api, ws);
  });

  it('stops on SIGTERM with exit 0 within 5 s', async () => {
    const started = Date.now();
    const { code } = await proc.stop('SIGTERM');
    assert.equal(code, 0);
    assert.ok(Date.now() - started < 5000);
  });
});

describe('three processes on Redis and PostgreSQL', () => {
  let redis: RedisServer;
  let database: Awaited<ReturnType<typeof createTestDatabase>>;
  const procs: TradewireProcess[] = [];
  let api: string;
  let ws: string;

  before(async () => {
    redis = await RedisServer.start();
    database = await createTestDatabase();
    const env = {
      PORT: String(await freePort()),
      WS_PORT: String(await freePort()),
      REDIS_URL: redis.url,
      DATABASE_URL: database.url,
      PRICE_INTERVAL_MS: '100',
    };
    // The API applies migrations; start it first so the others find the schema.
    const apiProc = new TradewireProcess(['api'], env);
    procs.push(apiProc);
    api = (await apiProc.ready).api!;
    const wsProc = new TradewireProcess(['ws'], env);
    const workerProc = new TradewireProcess(['worker'], env);
    procs.push(wsProc, workerProc);
    ws = (await wsProc.ready).ws!;
    await workerProc.ready;
  });

  after(async () => {
    await Promise.all(procs.map((p) => p.stop()));
    await database?.drop();
    await redis?.stop();
  });

  it('runs the Order Filled Flow across processes, matching the database row', async () => {
    const client = new pg.Client({ connectionString: database.url });
    await client.connect();
    try {
      await orderFilledFlow(api, ws, async (orderId) => {
        const { rows } = await client.query(
          'SELECT executed_price::text, executed_size::text, fee::text FROM orders WHERE id = $1',
          [orderId],
        );
        assert.equal(rows.length, 1);
        return rows[0] as Record<string, string>;
      });
    } finally {
      await client.end();
    }
  });

  it('runs the Price Update Flow across processes', async () => {
    await priceUpdateFlow(api, ws);
  });

  it("a new user never gets the portfolio an earlier database left in Redis under the user's id", async () => {
    const register = async () => {
      const username = `r${Date.now().toString(36)}${Math.floor(Math.random() * 1e6)}`;
      const reg = await json(`${api}/auth/register`, {
        method: 'POST',
        body: JSON.stringify({ username, password: 'correct horse' }),
      });
      assert.equal(reg.status, 201, JSON.stringify(reg.body));
      return reg.body as { token: string; userId: number };
    };
    // The next id this database gives out, holding a portfolio from before a reset of the
    // database (Redis kept): someone else's, at a version this user will not reach for a while.
    const nextId = (await register()).userId + 1;
    const broker = await connectRedisBroker(redis.url);
    try {
      await broker.setLatest(
        redisKeys.portfolio(nextId),
        JSON.stringify({
          userId: nextId,
          balances: [{ asset: 'USD', available: '123456.78', locked: '0' }],
          positions: [{ asset: 'SOL', size: '40', avgEntryPrice: '150' }],
          timestamp: new Date().toISOString(),
          version: 50,
          orderSeq: 0,
        }),
      );
    } finally {
      await broker.close();
    }
    const { token, userId } = await register();
    assert.equal(userId, nextId, 'no other registration in between');
    const own = (await json(`${api}/portfolio`, { token })).body as PortfolioMessage;

    const inbox = await TestClient.connect(ws);
    try {
      await inbox.request({ type: 'auth', token });
      await inbox.request({ type: 'subscribe', channel: 'portfolio' });
      const snapshot = await inbox.waitFor((m): m is PortfolioMessage => m.type === 'portfolio', 10_000, 'portfolio');
      assert.deepEqual(snapshot.balances, own.balances);
      assert.deepEqual(snapshot.positions, own.positions);
    } finally {
      void inbox.close();
    }
  });

  it('refuses a split role without Redis and PostgreSQL, with a clear message', async () => {
    const proc = new TradewireProcess(['api'], { REDIS_URL: '', DATABASE_URL: '', PORT: '0' });
    const { code } = await proc.exited;
    assert.equal(code, 2);
    assert.match(proc.stderr.join('\n'), /needs REDIS_URL and DATABASE_URL/);
  });

  it('refuses an invalid variable at start, naming it', async () => {
    const proc = new TradewireProcess([], { PORT: 'eighty' });
    const { code } = await proc.exited;
    assert.equal(code, 2);
    assert.match(proc.stderr.join('\n'), /PORT must be an integer port number/);
  });
});
