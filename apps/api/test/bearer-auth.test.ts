import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { MemoryBroker } from '@repo/broker';
import { hashToken, newSessionToken, openDatabase, type Database } from '@repo/db';
import { createTestDatabase } from '@repo/test-support';
import type { Api } from '../src/index.ts';
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

  it('looks a session up once for many orders, and a logout still stops the next order', async () => {
    await setPrice(broker, 'SOL', '100');
    const { token, userId } = await register(api);
    const place = () =>
      fetch(`${base}/orders`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ symbol: 'SOL', side: 'buy', size: '0.01' }),
      });
    const before = lookups;
    for (let i = 0; i < 5; i++) assert.equal((await place()).status, 201);
    assert.equal(lookups - before, 1, 'the orders share one lookup');

    // Revoked behind the API's back, as another API process's logout would: no cache is told.
    const session = await db.sessions.findActive(hashToken(token), new Date());
    assert.equal(await db.sessions.revoke(session!.sessionId, new Date()), true);
    const refused = await place();
    assert.equal(refused.status, 401);
    assert.equal(refused.headers.get('www-authenticate'), 'Bearer');
    assert.equal(((await refused.json()) as { error: { code: string } }).error.code, 'unauthorized');
    assert.equal((await place()).status, 401, 'and every order after it');
    assert.equal((await db.orders.list(userId, { limit: 10 })).orders.length, 5, 'no order written after the logout');
  });
});
