import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import pg from 'pg';
import { MemoryBroker } from '@repo/broker';
import { hashToken, newSessionToken, openDatabase, type Database, type OutboxRepository } from '@repo/db';
import { createTestDatabase, waitFor } from '@repo/test-support';
import type { Api } from '../src/index.ts';
import { Housekeeping } from '../src/housekeeping.ts';
import { bearer, makeApi, register, setPrice } from './support.ts';

/**
 * Unbounded growth, closed on a real PostgreSQL database: outbox pruning catches up with any
 * backlog in bounded batches, expired sessions and old idempotency keys are deleted, and
 * integer parameters past 32 bits are answered, never a 500.
 */
describe('housekeeping and 64-bit parameters', () => {
  let database: Awaited<ReturnType<typeof createTestDatabase>>;
  let db: Database;
  let admin: pg.Pool;
  let broker: MemoryBroker;
  let api: Api;
  const pruneLimits: number[] = [];

  before(async () => {
    database = await createTestDatabase('tw_housekeeping');
    db = await openDatabase({ url: database.url });
    admin = new pg.Pool({ connectionString: database.url, max: 2 });
    // pool.end() resolves before its sockets close; dropping the database then ends them with
    // an error the pool emits, which must not be unhandled.
    admin.on('error', () => {});
    broker = new MemoryBroker();
    const outbox: OutboxRepository = {
      ...db.outbox,
      prunePublished: (cutoff, limit, keep) => {
        pruneLimits.push(limit);
        return db.outbox.prunePublished(cutoff, limit, keep);
      },
    };
    api = makeApi({ ...db, outbox }, broker, {
      relay: { pollIntervalMs: 50, retentionMs: 60_000, retentionEvents: 1, pruneBatchSize: 1000 },
    });
    await setPrice(broker, 'SOL', '100');
  });
  after(async () => {
    await api?.close();
    await broker?.close();
    await admin?.end();
    await db?.close();
    await database?.drop();
  });

  it('prunes a 25,000-event backlog in one run, in batches of at most 1000', async () => {
    const { userId } = await register(api);
    await admin.query(
      `insert into outbox (user_id, kind, payload, created_at, published_at)
       select $1, 'session_revoked', '{"sessionId":"x"}', now() - interval '2 days', now() - interval '2 days'
         from generate_series(1, 25000)`,
      [userId],
    );
    pruneLimits.length = 0;
    assert.equal(await api.relay.prune(), 25_000);
    assert.ok(pruneLimits.length >= 26 && pruneLimits.every((l) => l <= 1000), `${pruneLimits.length} batches`);
    const { rows } = await admin.query<{ n: string }>(`select count(*)::text as n from outbox where user_id = $1`, [
      userId,
    ]);
    assert.equal(rows[0]!.n, '0');
  });

  it('deletes sessions past their expiry and idempotency keys past 24 hours, keeping the rest', async () => {
    const { userId, token } = await register(api);
    await admin.query(
      `insert into sessions (id, user_id, token_hash, expires_at)
       select gen_random_uuid(), $1, md5(random()::text) || g, now() - interval '1 minute'
         from generate_series(1, 2500) g`,
      [userId],
    );
    const expiringSoon = newSessionToken();
    await db.sessions.create({ userId, tokenHash: hashToken(expiringSoon), expiresAt: new Date(Date.now() + 60_000) });

    for (const key of ['old', 'new']) {
      const response = await api.app.inject({
        method: 'POST',
        url: '/orders',
        headers: { ...bearer(token), 'idempotency-key': key },
        payload: { symbol: 'SOL', side: 'buy', size: '0.01' },
      });
      assert.equal(response.statusCode, 201);
    }
    await admin.query(`update idempotency_keys set created_at = now() - interval '25 hours' where key = 'old'`);

    const deleted = await api.housekeeping.run();
    assert.ok(deleted.sessions >= 2500, JSON.stringify(deleted));
    assert.equal(deleted.idempotencyKeys, 1);
    const left = await admin.query<{ n: string }>(
      `select count(*)::text as n from sessions where user_id = $1 and expires_at <= now()`,
      [userId],
    );
    assert.equal(left.rows[0]!.n, '0');
    assert.equal((await api.app.inject({ method: 'GET', url: '/portfolio', headers: bearer(token) })).statusCode, 200);
    assert.equal(
      (await api.app.inject({ method: 'GET', url: '/portfolio', headers: bearer(expiringSoon) })).statusCode,
      200,
      'a live session stays',
    );
    const keys = await admin.query<{ key: string }>(`select key from idempotency_keys where user_id = $1`, [userId]);
    assert.deepEqual(
      keys.rows.map((r) => r.key),
      ['new'],
    );
  });

  it('runs one pass at a time (a run asked for meanwhile joins it), and close() waits for it', async () => {
    // A pass after a large backlog can outlast the interval: the timer must not start a second
    // one beside it, and a shutdown must not leave statements running after it.
    let calls = 0;
    let open!: () => void;
    const gate = new Promise<void>((resolve) => (open = resolve));
    const sessions = {
      ...db.sessions,
      deleteExpired: async (now: Date, limit: number) => {
        calls++;
        await gate;
        return db.sessions.deleteExpired(now, limit);
      },
    };
    const housekeeping = new Housekeeping({ db: { sessions, orders: db.orders } });
    const first = housekeeping.run();
    const second = housekeeping.run();
    await waitFor(() => calls > 0, { what: 'the pass to reach the database' });
    assert.equal(calls, 1, 'one pass');
    let closed = false;
    const closing = housekeeping.close().then(() => (closed = true));
    // The pass is held at its first statement: close() cannot resolve, however many turns pass.
    for (let turn = 0; turn < 5; turn++) await new Promise((resolve) => setImmediate(resolve));
    assert.equal(closed, false, 'close() waits for the pass');
    open();
    await closing;
    assert.deepEqual(await first, await second);
    assert.equal(calls, 1);

    // The relay's pruning, on its own timer, the same.
    const pruning = api.relay.prune();
    assert.equal(api.relay.prune(), pruning, 'joins the pass in progress');
    await pruning;
  });

  it('answers GET /orders?before=2147483648 with 200, and any integer up to 2^53 with 200 or 400', async () => {
    const { token } = await register(api);
    await api.app.inject({
      method: 'POST',
      url: '/orders',
      headers: bearer(token),
      payload: { symbol: 'SOL', side: 'buy', size: '0.01' },
    });
    const get = (query: string) => api.app.inject({ method: 'GET', url: `/orders${query}`, headers: bearer(token) });
    const past32 = await get('?before=2147483648');
    assert.equal(past32.statusCode, 200);
    assert.equal(past32.json<{ orders: unknown[] }>().orders.length, 1);

    const integer = fc.oneof(
      fc.bigInt({ min: -(2n ** 53n), max: 2n ** 53n + 2n }),
      fc.constantFrom(0n, 1n, 100n, 101n, 2n ** 31n - 1n, 2n ** 31n, 2n ** 32n, 2n ** 53n - 1n, 2n ** 53n, 2n ** 63n),
    );
    await fc.assert(
      fc.asyncProperty(integer, integer, fc.boolean(), async (before, limit, both) => {
        const query = both ? `?before=${before}&limit=${limit}` : `?before=${before}`;
        const response = await get(query);
        assert.ok(response.statusCode === 200 || response.statusCode === 400, `${query} -> ${response.statusCode}`);
        const inRange = (v: bigint, max: bigint) => v >= 1n && v <= max;
        const valid = inRange(before, 2n ** 53n - 1n) && (!both || inRange(limit, 100n));
        assert.equal(response.statusCode, valid ? 200 : 400, query);
      }),
      { numRuns: 300 },
    );
  });
});
