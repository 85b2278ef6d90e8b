import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { count, eq } from 'drizzle-orm';
import { MemoryBroker } from '@repo/broker';
import { openDatabase, schema, type Database } from '@repo/db';
import { createTestDatabase } from '@repo/test-support';
import type { Api } from '../src/index.ts';
import { bearer, makeApi, register, setPrice } from './support.ts';

/**
 * Retries never execute twice: two API processes (each its own pool) on one real PostgreSQL
 * database, many concurrent requests with one `Idempotency-Key`.
 */
describe('Idempotency-Key on POST /orders', () => {
  let database: Awaited<ReturnType<typeof createTestDatabase>>;
  const dbs: Database[] = [];
  const apis: Api[] = [];
  let broker: MemoryBroker;
  let clock = Date.now();
  const now = () => new Date(clock);

  before(async () => {
    database = await createTestDatabase('tw_idempotency');
    broker = new MemoryBroker();
    for (let i = 0; i < 2; i++) {
      const db = await openDatabase({ url: database.url, now });
      dbs.push(db);
      apis.push(makeApi(db, broker, { now, maxPriceAgeMs: 365 * 86_400_000 }));
    }
    await setPrice(broker, 'SOL', '100');
  });
  after(async () => {
    for (const api of apis) await api.close();
    for (const db of dbs) await db.close();
    await broker.close();
    await database.drop();
  });

  const order = (
    token: string,
    key: string | undefined,
    payload: object = { symbol: 'SOL', side: 'buy', size: '1' },
    via = 0,
  ) =>
    apis[via]!.app.inject({
      method: 'POST',
      url: '/orders',
      headers: { ...bearer(token), ...(key === undefined ? {} : { 'idempotency-key': key }) },
      payload,
    });
  const ordersOf = async (userId: number) => {
    const [row] = await dbs[0]!.drizzle
      .select({ n: count() })
      .from(schema.orders)
      .where(eq(schema.orders.userId, userId));
    return Number(row!.n);
  };

  it('executes one order for 20 concurrent requests with one key across two processes', async () => {
    const { userId, token } = await register(apis[0]!);
    const answers = await Promise.all(Array.from({ length: 20 }, (_, i) => order(token, 'click-1', undefined, i % 2)));
    assert.ok(
      answers.every((a) => a.statusCode === 201),
      answers.map((a) => a.statusCode).join(),
    );
    assert.equal(new Set(answers.map((a) => a.body)).size, 1, 'the same body for every attempt');
    assert.equal(answers.filter((a) => a.headers['idempotent-replayed'] === 'true').length, 19);
    assert.equal(await ordersOf(userId), 1);
    const portfolio = await dbs[1]!.portfolio.get(userId);
    assert.equal(portfolio?.balances[0]?.available, '9899.99', 'charged once');
    assert.equal(portfolio?.orderSeq, 1);
    const events = (await dbs[0]!.outbox.orderHistory(userId, 0, 100, 1 << 20)).events;
    assert.equal(events.length, 1, 'published once');

    // A later retry, with the size spelled differently, is the same order.
    const retry = await order(token, 'click-1', { symbol: 'SOL', side: 'buy', size: '1.00' }, 1);
    assert.equal(retry.statusCode, 201);
    assert.equal(retry.body, answers[0]!.body);
    assert.equal(await ordersOf(userId), 1);
  });

  it('replays a rejection with its 422 and body, refuses the key for another order; keys are per user', async () => {
    const { userId, token } = await register(apis[0]!);
    const big = { symbol: 'SOL', side: 'buy', size: '1000' };
    const first = await order(token, 'k', big);
    assert.equal(first.statusCode, 422);
    assert.equal(first.json<{ reason: string }>().reason, 'insufficient_funds');
    const again = await order(token, 'k', big, 1);
    assert.deepEqual([again.statusCode, again.body], [422, first.body]);

    const reused = await order(token, 'k', { symbol: 'SOL', side: 'sell', size: '1000' });
    assert.equal(reused.statusCode, 422);
    assert.deepEqual(reused.json(), {
      error: { code: 'idempotency_key_reused', message: 'this Idempotency-Key was used for a different order' },
    });
    assert.equal(await ordersOf(userId), 1);

    const other = await register(apis[1]!);
    assert.equal((await order(other.token, 'k', big)).headers['idempotent-replayed'], undefined, 'own key space');
    assert.equal(await ordersOf(other.userId), 1);

    // Without a key every request executes.
    assert.equal((await order(token, undefined)).statusCode, 201);
    assert.equal((await order(token, undefined)).statusCode, 201);
    assert.equal(await ordersOf(userId), 3);
  });

  it('forgets a key after 24 hours', async () => {
    const { userId, token } = await register(apis[0]!);
    const first = await order(token, 'daily');
    clock += 24 * 3_600_000 - 1;
    assert.equal((await order(token, 'daily')).body, first.body);
    clock += 2;
    const later = await order(token, 'daily');
    assert.equal(later.statusCode, 201);
    assert.notEqual(later.json<{ orderId: number }>().orderId, first.json<{ orderId: number }>().orderId);
    assert.equal(await ordersOf(userId), 2);
  });

  it('refuses a malformed key with 400 and executes nothing', async () => {
    const { userId, token } = await register(apis[0]!);
    for (const key of ['', 'x'.repeat(65), 'has space', 'tab\tkey', 'ключ']) {
      const response = await apis[0]!.app.inject({
        method: 'POST',
        url: '/orders',
        headers: { ...bearer(token), 'idempotency-key': Buffer.from(key, 'utf8').toString('latin1') },
        payload: { symbol: 'SOL', side: 'buy', size: '1' },
      });
      assert.equal(response.statusCode, 400, JSON.stringify(key));
      assert.match(response.json<{ error: { message: string } }>().error.message, /Idempotency-Key/);
    }
    assert.equal((await order(token, 'x'.repeat(64))).statusCode, 201, '64 characters are fine');
    assert.equal((await order(token, '!~')).statusCode, 201);
    assert.equal(await ordersOf(userId), 2);
  });
});
