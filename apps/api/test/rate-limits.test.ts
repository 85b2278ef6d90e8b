import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { MemoryBroker } from '@repo/broker';
import { openDatabase, type Database } from '@repo/db';
import { createRedisClient, createRedisClusterClient, type RedisClient } from '@repo/redis';
import { RedisCluster, RedisServer, waitFor } from '@repo/test-support';
import type { Api } from '../src/index.ts';
import { bearer, makeApi, register, setPrice, uniqueName } from './support.ts';

/**
 * The login, registration and order limits against real servers: parallel guesses are
 * counted when they start, the counts hold across two API processes sharing Redis, and
 * IPv6 clients are counted per /64.
 */

/** POST JSON to a listening server from a chosen local address (127.0.0.0/8 is all loopback). */
function post(base: string, path: string, body: unknown, localAddress = '127.0.0.1') {
  const url = new URL(path, base);
  const payload = JSON.stringify(body);
  return new Promise<{ status: number; headers: Record<string, unknown>; body: string }>((resolve, reject) => {
    const req = httpRequest(
      url,
      {
        method: 'POST',
        localAddress,
        headers: { 'content-type': 'application/json', 'content-length': payload.length },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (text += chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }));
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

/** GET from a listening server from a chosen local address. */
function get(base: string, path: string, localAddress: string) {
  return new Promise<{ status: number; headers: Record<string, unknown>; body: string }>((resolve, reject) => {
    const req = httpRequest(new URL(path, base), { localAddress }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }));
    });
    req.on('error', reject);
    req.end();
  });
}

const tally = (statuses: number[]) =>
  statuses.reduce<Record<number, number>>((t, s) => ({ ...t, [s]: (t[s] ?? 0) + 1 }), {});

describe('rate limits', () => {
  let db: Database;
  let broker: MemoryBroker;
  let redis: RedisServer;
  const clients: RedisClient[] = [];
  const apis: Api[] = [];

  before(async () => {
    db = await openDatabase({ dataDir: 'memory://' });
    broker = new MemoryBroker();
    redis = await RedisServer.start();
  });
  after(async () => {
    for (const api of apis) await api.close();
    for (const client of clients) await client.close();
    await redis?.stop();
    await broker?.close();
    await db?.close();
  });

  async function redisClient(): Promise<RedisClient> {
    const client = createRedisClient(redis.url);
    client.on('error', () => {});
    await client.connect();
    clients.push(client);
    return client;
  }

  async function start(options: Parameters<typeof makeApi>[2]): Promise<{ api: Api; base: string }> {
    const api = makeApi(db, broker, options);
    apis.push(api);
    return { api, base: await api.app.listen({ port: 0, host: '127.0.0.1' }) };
  }

  it('lets at most 10 of 50 parallel wrong logins through (the rest 429); the right password works later', async () => {
    const { api, base } = await start({ rateLimits: { perUsername: { max: 10, windowMs: 4000 } } });
    const { username } = await register(api);
    const answers = await Promise.all(
      Array.from({ length: 50 }, () => post(base, '/auth/login', { username, password: 'wrong-password' })),
    );
    const counts = tally(answers.map((a) => a.status));
    assert.ok((counts[401] ?? 0) <= 10, JSON.stringify(counts));
    assert.equal((counts[401] ?? 0) + (counts[429] ?? 0), 50, JSON.stringify(counts));
    const limited = answers.find((a) => a.status === 429)!;
    assert.equal((JSON.parse(limited.body) as { error: { code: string } }).error.code, 'rate_limited');
    assert.ok(Number(limited.headers['retry-after']) >= 1);

    // Past the limit across addresses: locked from everywhere, even with the right password;
    // open again once the window has passed.
    assert.equal((await post(base, '/auth/login', { username, password: 'password123' }, '127.0.0.2')).status, 429);
    await waitFor(
      async () => (await post(base, '/auth/login', { username, password: 'password123' }, '127.0.0.2')).status === 200,
      { timeoutMs: 10_000, intervalMs: 250, what: 'the username to open again' },
    );
  });

  for (const store of ['memory', 'redis'] as const) {
    const startWith = async (rateLimits: NonNullable<Parameters<typeof makeApi>[2]>['rateLimits']) => {
      const started = await start({
        rateLimits,
        ...(store === 'redis' ? { rateLimitRedis: await redisClient() } : {}),
      });
      const { username } = await register(started.api);
      const login = (password: string, from: string) => post(started.base, '/auth/login', { username, password }, from);
      const wrongFrom = async (from: string, times: number) => {
        const statuses: number[] = [];
        for (let i = 0; i < times; i++) statuses.push((await login('wrong-password', from)).status);
        return statuses;
      };
      return { login, wrongFrom };
    };

    it(`locks out the address that guessed, not the username's owner at another address (${store})`, async () => {
      // The production login limits.
      const { login, wrongFrom } = await startWith(undefined);
      assert.deepEqual(await wrongFrom('127.0.0.2', 10), Array(10).fill(401));
      const locked = await login('password123', '127.0.0.2');
      assert.equal(locked.status, 429, 'the guessing address is locked out, right password or not');
      assert.equal((JSON.parse(locked.body) as { error: { code: string } }).error.code, 'rate_limited');
      assert.ok(Number(locked.headers['retry-after']) > 60, String(locked.headers['retry-after']));
      assert.equal((await login('password123', '127.0.0.3')).status, 200, 'the owner, from another address');
    });

    it(`locks the username everywhere once failures across addresses reach perUsername (${store})`, async () => {
      const { login, wrongFrom } = await startWith({ perUsername: { max: 25, windowMs: 60_000 } });
      assert.deepEqual(await wrongFrom('127.0.0.2', 10), Array(10).fill(401));
      // A success gives its attempt back: it is not a guess.
      assert.equal((await login('password123', '127.0.0.3')).status, 200);
      assert.deepEqual(await wrongFrom('127.0.0.4', 10), Array(10).fill(401));
      assert.deepEqual(await wrongFrom('127.0.0.5', 5), Array(5).fill(401));
      const spread = await login('password123', '127.0.0.6');
      assert.equal(spread.status, 429, 'guessing spread over addresses locks the username everywhere');
      assert.ok(Number(spread.headers['retry-after']) >= 1);
    });
  }

  for (const store of ['memory', 'redis'] as const) {
    it(`limits GET /candles per address: a flood gets 429, another address is served (${store})`, async () => {
      const { base } = await start({
        // The production limits (makeApi lifts the candle limit for other tests).
        rateLimits: {},
        ...(store === 'redis' ? { rateLimitRedis: await redisClient() } : {}),
      });
      const candles = (from: string) => get(base, '/candles?symbol=SOL&interval=1s&limit=1000', from);
      const flood = await Promise.all(Array.from({ length: 150 }, () => candles('127.0.0.2')));
      const counts = tally(flood.map((a) => a.status));
      assert.deepEqual(counts, { 200: 120, 429: 30 }, JSON.stringify(counts));
      const refused = flood.find((a) => a.status === 429)!;
      assert.equal((JSON.parse(refused.body) as { error: { code: string } }).error.code, 'rate_limited');
      const retryAfter = Number(refused.headers['retry-after']);
      assert.ok(retryAfter >= 1 && retryAfter <= 60, String(retryAfter));
      assert.equal((await candles('127.0.0.2')).status, 429, 'still refused');
      assert.equal((await candles('127.0.0.3')).status, 200, 'another address');
    });
  }

  it('holds the username limit across two API processes that share Redis', async () => {
    const rules = { perUsername: { max: 10, windowMs: 60_000 } };
    const one = await start({ rateLimits: rules, rateLimitRedis: await redisClient() });
    const two = await start({ rateLimits: rules, rateLimitRedis: await redisClient() });
    const { username } = await register(one.api);
    const answers = await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        post(i % 2 ? one.base : two.base, '/auth/login', { username, password: 'wrong-password' }),
      ),
    );
    const counts = tally(answers.map((a) => a.status));
    assert.ok((counts[401] ?? 0) <= 10, `both processes together: ${JSON.stringify(counts)}`);
    assert.equal((counts[401] ?? 0) + (counts[429] ?? 0), 50);
    // The other process refuses the right password too: the count is shared.
    assert.equal((await post(one.base, '/auth/login', { username, password: 'password123' })).status, 429);
    assert.equal((await post(two.base, '/auth/login', { username, password: 'password123' })).status, 429);
  });

  it('holds the username limit across two API processes that share a Redis Cluster', async () => {
    const cluster = await RedisCluster.start();
    const clusterClients = [1, 2].map(() => {
      const client = createRedisClusterClient(cluster.rootNodes.split(','));
      client.on('error', () => {});
      client.on('node-error', () => {});
      return client;
    });
    try {
      await Promise.all(clusterClients.map((client) => client.connect()));
      const rules = { perUsername: { max: 10, windowMs: 60_000 } };
      const [one, two] = await Promise.all(
        clusterClients.map((client) => start({ rateLimits: rules, rateLimitRedis: client })),
      );
      const { username } = await register(one!.api);
      const answers = await Promise.all(
        Array.from({ length: 40 }, (_, i) =>
          post(i % 2 ? one!.base : two!.base, '/auth/login', { username, password: 'wrong-password' }),
        ),
      );
      const counts = tally(answers.map((a) => a.status));
      assert.ok((counts[401] ?? 0) <= 10, `both processes together: ${JSON.stringify(counts)}`);
      assert.equal((counts[401] ?? 0) + (counts[429] ?? 0), 40);
      assert.equal((await post(two!.base, '/auth/login', { username, password: 'password123' })).status, 429);
    } finally {
      for (const client of clusterClients) client.destroy();
      await cluster.stop();
    }
  });

  it('falls back to a per-process limit while Redis is down instead of failing logins', async () => {
    const client = await redisClient();
    const { base } = await start({ rateLimits: { perUsername: { max: 3, windowMs: 60_000 } }, rateLimitRedis: client });
    await redis.kill();
    try {
      await waitFor(() => !client.isReady, { what: 'the client to notice Redis is gone' });
      const statuses: number[] = [];
      for (let i = 0; i < 5; i++) {
        statuses.push(
          (await post(base, '/auth/login', { username: uniqueName('ghost'), password: 'whatever1' })).status,
        );
      }
      assert.deepEqual(statuses, [401, 401, 401, 401, 401]);
      const username = uniqueName('ghost');
      const same: number[] = [];
      for (let i = 0; i < 5; i++)
        same.push((await post(base, '/auth/login', { username, password: 'x1234567' })).status);
      assert.deepEqual(same, [401, 401, 401, 429, 429]);
    } finally {
      await redis.restart();
    }
  });

  it('counts IPv6 clients per /64 for login and registration', async () => {
    const { api } = await start({
      rateLimits: { registerPerAddress: { max: 3, windowMs: 60_000 }, perAddress: { max: 3, windowMs: 60_000 } },
    });
    const registerFrom = (remoteAddress: string) =>
      api.app.inject({
        method: 'POST',
        url: '/auth/register',
        payload: { username: uniqueName('v6'), password: 'password123' },
        remoteAddress,
      });
    for (const address of ['2001:db8:1:2::1', '2001:db8:1:2:a:b:c:d', '2001:0db8:0001:0002:ffff:ffff:ffff:ffff']) {
      assert.equal((await registerFrom(address)).statusCode, 201, address);
    }
    assert.equal((await registerFrom('2001:db8:1:2:1234::9')).statusCode, 429, 'same /64, another address');
    assert.equal((await registerFrom('2001:db8:1:3::1')).statusCode, 201, 'another /64');

    const loginFrom = (remoteAddress: string) =>
      api.app.inject({
        method: 'POST',
        url: '/auth/login',
        payload: { username: uniqueName('v6'), password: 'password123' },
        remoteAddress,
      });
    for (const host of ['1', '2', '3']) assert.equal((await loginFrom(`2001:db8:9:9::${host}`)).statusCode, 401);
    assert.equal((await loginFrom('2001:db8:9:9::4')).statusCode, 429);
    assert.equal((await loginFrom('2001:db8:9:a::4')).statusCode, 401);
  });

  it('limits each user to ordersPerUser orders per window: past it 429 rate_limited, nothing stored', async () => {
    // A long window, so that a slow machine cannot spread the burst over two of them.
    const { api } = await start({ rateLimits: { ordersPerUser: { max: 20, windowMs: 60_000 } } });
    await setPrice(broker, 'SOL', '10');
    const { token, userId } = await register(api);
    const other = await register(api);
    const placeOrder = (t: string) =>
      api.app.inject({
        method: 'POST',
        url: '/orders',
        headers: bearer(t),
        payload: { symbol: 'SOL', side: 'buy', size: '0.001' },
      });
    const answers = await Promise.all(Array.from({ length: 40 }, () => placeOrder(token)));
    const counts = tally(answers.map((a) => a.statusCode));
    assert.ok((counts[201] ?? 0) <= 20 && (counts[201] ?? 0) >= 1, JSON.stringify(counts));
    assert.equal((counts[201] ?? 0) + (counts[429] ?? 0), 40, JSON.stringify(counts));
    const refused = answers.find((a) => a.statusCode === 429)!;
    assert.equal(refused.json<{ error: { code: string } }>().error.code, 'rate_limited');
    assert.ok(Number(refused.headers['retry-after']) >= 1);
    const stored = await db.orders.list(userId, { limit: 100 });
    assert.equal(stored.orders.length, counts[201], 'refused orders store nothing');
    // Another user is not affected.
    assert.equal((await placeOrder(other.token)).statusCode, 201);
    // Bad orders count too, and past the limit the refusal is the answer, not the bad body.
    const bad = () =>
      api.app.inject({ method: 'POST', url: '/orders', headers: bearer(other.token), payload: { symbol: 'NOPE' } });
    const badAnswers = await Promise.all(Array.from({ length: 25 }, bad));
    const badCounts = tally(badAnswers.map((a) => a.statusCode));
    assert.deepEqual(badCounts, { 400: 19, 429: 6 }, JSON.stringify(badCounts));
  });
});
