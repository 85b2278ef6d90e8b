import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { MemoryBroker } from '@repo/broker';
import type { FastifyRequest } from 'fastify';
import {
  createSessionStore,
  hashToken,
  newSessionToken,
  openDatabase,
  type Database,
  type SessionStore,
} from '@repo/db';
import { createTestDatabase } from '@repo/test-support';
import type { Api } from '../src/index.ts';
import { createBearerAuth } from '../src/bearer-auth.ts';
import { makeApi, register, setPrice } from './support.ts';

/**
 * HTTP Bearer tokens follow the gateway's rule: a repeated bad token costs one query. A real
 * HTTP server on a real PostgreSQL database, with the session lookups counted.
 */
describe('Bearer auth against a flood of one bad token', () => {
  let database: Awaited<ReturnType<typeof createTestDatabase>>;
  let db: Database;
  let broker: MemoryBroker;
  let api: Api;
  let base: string;
  let lookups = 0;

  before(async () => {
    database = await createTestDatabase('tw_bearer');
    db = await openDatabase({ url: database.url });
    broker = new MemoryBroker();
    const counting: Database = {
      ...db,
      sessions: {
        ...db.sessions,
        findActive: (hash, now) => {
          lookups++;
          return db.sessions.findActive(hash, now);
        },
      },
    };
    api = makeApi(counting, broker);
    base = await api.app.listen({ port: 0, host: '127.0.0.1' });
  });
  after(async () => {
    await api?.close();
    await broker?.close();
    await db?.close();
    await database?.drop();
  });

  const get = (token: string) => fetch(`${base}/portfolio`, { headers: { authorization: `Bearer ${token}` } });

  it('queries the database once for 300 requests with the same bad token, and still checks good ones', async () => {
    const bad = newSessionToken();
    const first = lookups;
    const parallel = await Promise.all(Array.from({ length: 150 }, () => get(bad)));
    for (let i = 0; i < 150; i++) parallel.push(await get(bad));
    for (const response of parallel) {
      assert.equal(response.status, 401);
      assert.equal(((await response.json()) as { error: { code: string } }).error.code, 'unauthorized');
    }
    assert.equal(lookups - first, 1);

    const { token } = await register(api);
    const before = lookups;
    assert.equal((await get(token)).status, 200);
    assert.equal((await get(token)).status, 200);
    assert.equal(lookups - before, 2, 'valid tokens are verified every time');
    assert.equal(
      (await fetch(`${base}/auth/logout`, { method: 'POST', headers: { authorization: `Bearer ${token}` } })).status,
      204,
    );
    assert.equal((await get(token)).status, 401, 'a logout takes effect at once');
  });

  const place = (token: string, body: unknown = { symbol: 'SOL', side: 'buy', size: '0.01' }) =>
    fetch(`${base}/orders`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
  // Revoked behind this API's back, as another API process's logout would: no cache is told.
  const revokeInDatabase = async (token: string) => {
    const session = await db.sessions.findActive(hashToken(token), new Date());
    assert.equal(await db.sessions.revoke(session!.sessionId, new Date()), true);
  };

  it('looks a session up once for many orders, and a logout elsewhere still stops the next order', async () => {
    await setPrice(broker, 'SOL', '100');
    const { token, userId } = await register(api);
    const before = lookups;
    for (let i = 0; i < 5; i++) assert.equal((await place(token)).status, 201);
    assert.equal(lookups - before, 1, 'the orders share one lookup');

    await revokeInDatabase(token);
    const refused = await place(token);
    assert.equal(refused.status, 401);
    assert.equal(refused.headers.get('www-authenticate'), 'Bearer');
    assert.equal(((await refused.json()) as { error: { code: string } }).error.code, 'unauthorized');
    assert.equal(lookups - before, 1, 'refused by the order itself');
    assert.equal((await place(token)).status, 401, 'and every order after it');
    assert.equal(lookups - before, 2, 'the refused session left the cache: looked up again');
    assert.equal((await db.orders.list(userId, { limit: 10 })).orders.length, 5, 'no order written after the logout');
  });

  it('forgets a session at its logout through this API', async () => {
    await setPrice(broker, 'SOL', '100');
    const { token } = await register(api);
    assert.equal((await place(token)).status, 201);
    const logout = await fetch(`${base}/auth/logout`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}` },
    });
    assert.equal(logout.status, 204);
    const before = lookups;
    assert.equal((await place(token)).status, 401);
    assert.equal(lookups - before, 1, 'not answered from the cache');
  });

  it('answers a revoked token 401, not 400 or 429, when the order is refused before it runs', async () => {
    await setPrice(broker, 'SOL', '100');
    const bad = await register(api);
    assert.equal((await place(bad.token)).status, 201);
    await revokeInDatabase(bad.token);
    assert.equal((await place(bad.token, { symbol: 'NOPE', side: 'buy', size: '1' })).status, 401);

    const limited = makeApi(db, broker, { rateLimits: { ordersPerUser: { max: 1, windowMs: 60_000 } } });
    try {
      const { token } = await register(limited);
      const order = (t: string) =>
        limited.app.inject({
          method: 'POST',
          url: '/orders',
          headers: { authorization: `Bearer ${t}` },
          payload: { symbol: 'SOL', side: 'buy', size: '0.01' },
        });
      assert.equal((await order(token)).statusCode, 201);
      assert.equal((await order(token)).statusCode, 429, 'over the limit, session active');
      await revokeInDatabase(token);
      assert.equal((await order(token)).statusCode, 401, 'over the limit, session revoked');
    } finally {
      await limited.close();
    }
  });
});

/**
 * The order route's session cache itself, on the real session store over PostgreSQL, with a
 * clock of the test's own.
 */
describe('BearerAuth: the cache of cachedHook', () => {
  let database: Awaited<ReturnType<typeof createTestDatabase>>;
  let db: Database;
  let clock = Date.parse('2030-01-01T00:00:00Z');
  let lookups = 0;
  before(async () => {
    database = await createTestDatabase('tw_bearer_cache');
    db = await openDatabase({ url: database.url });
  });
  after(async () => {
    await db?.close();
    await database?.drop();
  });

  const now = () => new Date(clock);
  const counting = (): SessionStore => {
    const store = createSessionStore(db, { now });
    return { ...store, verify: (token) => (lookups++, store.verify(token)) };
  };
  const session = async (expiresInMs: number) => {
    const { userId } = await db.users.create({
      username: `cache_${process.pid}_${lookups}_${Math.random().toString(36).slice(2, 8)}`,
      passwordHash: 'x',
      balances: [],
      positionAssets: [],
    });
    const token = newSessionToken();
    await db.sessions.create({ userId, tokenHash: hashToken(token), expiresAt: new Date(clock + expiresInMs) });
    return token;
  };
  const request = (token: string) => ({ headers: { authorization: `Bearer ${token}` } }) as unknown as FastifyRequest;
  const counted = async (run: () => Promise<void>) => {
    const before = lookups;
    await run();
    return lookups - before;
  };

  it('trusts a session for cacheMs, never past its expiry, and at most maxCached of them', async () => {
    const auth = createBearerAuth(counting(), { now, cacheMs: 60_000, maxCached: 2 });
    const long = await session(3_600_000);
    assert.equal(await counted(() => auth.cachedHook(request(long))), 1);
    clock += 59_000;
    assert.equal(await counted(() => auth.cachedHook(request(long))), 0, 'within cacheMs');
    clock += 2_000;
    assert.equal(await counted(() => auth.cachedHook(request(long))), 1, 'past cacheMs: looked up again');

    const short = await session(10_000);
    assert.equal(await counted(() => auth.cachedHook(request(short))), 1);
    clock += 10_000;
    await assert.rejects(auth.cachedHook(request(short)), { statusCode: 401 }, 'expired: not answered from the cache');

    const [a, b] = [await session(3_600_000), await session(3_600_000)];
    await auth.cachedHook(request(long));
    await auth.cachedHook(request(a));
    await auth.cachedHook(request(b));
    assert.equal(await counted(() => auth.cachedHook(request(b))), 0);
    assert.equal(await counted(() => auth.cachedHook(request(long))), 1, 'the oldest was forgotten for the third');
  });

  it('refuses nonsense options', () => {
    for (const options of [{ cacheMs: -1 }, { cacheMs: Number.NaN }, { maxCached: 0 }, { maxCached: 1.5 }]) {
      assert.throws(() => createBearerAuth(counting(), options), RangeError);
    }
  });
});
