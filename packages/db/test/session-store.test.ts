import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { createTestDatabase } from '@repo/test-support';
import {
  createSessionStore,
  hashToken,
  newSessionToken,
  openDatabase,
  type Database,
  type SessionsRepository,
} from '../src/index.ts';
import { newUser } from './database-suite.ts';

/**
 * The shared session verifier on a real PostgreSQL database: a repeated bad token costs one
 * query, and a verification against a locked table ends its query at the statement timeout
 * instead of leaving it queued.
 */
describe('session store', () => {
  let database: Awaited<ReturnType<typeof createTestDatabase>>;
  let db: Database;

  before(async () => {
    database = await createTestDatabase('tw_sessions');
    db = await openDatabase({ url: database.url, sessionLookupTimeoutMs: 300 });
  });
  after(async () => {
    await db?.close();
    await database?.drop();
  });

  /** The repository with every lookup counted: each call is one query on PostgreSQL. */
  function counted(): { sessions: SessionsRepository; queries: () => number } {
    let queries = 0;
    return {
      sessions: {
        ...db.sessions,
        findActive: (hash, now) => {
          queries++;
          return db.sessions.findActive(hash, now);
        },
      },
      queries: () => queries,
    };
  }

  it('answers a repeated bad token from memory: one query per distinct bad token per TTL', async () => {
    const repo = counted();
    let now = Date.now();
    const store = createSessionStore(repo, { now: () => new Date(now), failedTokenTtlMs: 60_000 });
    const bad = newSessionToken();

    // 200 at once and 200 one after the other: one query.
    const burst = await Promise.all(Array.from({ length: 200 }, () => store.verify(bad)));
    assert.ok(burst.every((s) => s === null));
    for (let i = 0; i < 200; i++) assert.equal(await store.verify(bad), null);
    assert.equal(repo.queries(), 1);

    // Another bad token is its own query; malformed ones cost none.
    assert.equal(await store.verify(newSessionToken()), null);
    assert.equal(await store.verify('not a token'), null);
    assert.equal(repo.queries(), 2);

    // After the TTL the token is asked about again (once).
    now += 60_001;
    assert.equal(await store.verify(bad), null);
    assert.equal(await store.verify(bad), null);
    assert.equal(repo.queries(), 3);

    // A revoked token joins the memory; a valid one is asked about every time.
    const userId = await newUser(db);
    const token = newSessionToken();
    const { sessionId } = await db.sessions.create({
      userId,
      tokenHash: hashToken(token),
      expiresAt: new Date(now + 3_600_000),
    });
    for (let i = 0; i < 3; i++) assert.equal((await store.verify(token))?.sessionId, sessionId);
    assert.equal(repo.queries(), 6);
    await db.sessions.revoke(sessionId, new Date(now));
    assert.equal(await store.verify(token), null, 'a logout takes effect at once');
    assert.equal(await store.verify(token), null);
    assert.equal(repo.queries(), 7);
  });

  it('keeps at most maxFailedTokens, forgetting the oldest first', async () => {
    const repo = counted();
    const store = createSessionStore(repo, { maxFailedTokens: 3 });
    const tokens = Array.from({ length: 4 }, () => newSessionToken());
    for (const t of tokens) await store.verify(t);
    assert.equal(repo.queries(), 4);
    await store.verify(tokens[3]!);
    await store.verify(tokens[1]!);
    assert.equal(repo.queries(), 4, 'the newest three are remembered');
    await store.verify(tokens[0]!);
    assert.equal(repo.queries(), 5, 'the oldest was forgotten');
  });

  it('does not remember database errors', async () => {
    let calls = 0;
    const failing: SessionsRepository = {
      ...db.sessions,
      findActive: () => {
        calls++;
        return Promise.reject(new Error('database down'));
      },
    };
    const store = createSessionStore({ sessions: failing });
    const token = newSessionToken();
    await assert.rejects(store.verify(token), /database down/);
    await assert.rejects(store.verify(token), /database down/);
    assert.equal(calls, 2);
  });

  it('cancels a verification stuck behind a lock at the statement timeout, leaving no query running', async () => {
    const userId = await newUser(db);
    const token = newSessionToken();
    await db.sessions.create({ userId, tokenHash: hashToken(token), expiresAt: new Date(Date.now() + 3_600_000) });
    const store = createSessionStore(db);
    const locker = new pg.Client({ connectionString: database.url });
    await locker.connect();
    try {
      await locker.query('begin');
      await locker.query('lock table sessions in access exclusive mode');
      // Without a server-side timeout this would wait for the lock as long as it is held.
      let guard: NodeJS.Timeout | undefined;
      const outcome = await Promise.race([
        store.verify(token).then(
          () => 'answered',
          (err: unknown) => err,
        ),
        new Promise((resolve) => {
          guard = setTimeout(() => resolve('still waiting after 15 s'), 15_000);
        }),
      ]);
      clearTimeout(guard);
      assert.equal((outcome as { code?: string }).code, 'database_error', String(outcome));
      assert.equal((outcome as { sqlState?: string }).sqlState, '57014', 'canceled by statement timeout');
      const waiting = await locker.query<{ n: string }>(
        `select count(*)::text as n from pg_stat_activity
          where datname = current_database() and pid <> pg_backend_pid() and wait_event_type = 'Lock'`,
      );
      assert.equal(waiting.rows[0]!.n, '0', 'no verification query left waiting on the lock');
    } finally {
      await locker.query('rollback').catch(() => {});
      await locker.end();
    }
    // The database is back: the same token verifies again (the error was not remembered).
    assert.equal((await store.verify(token))?.userId, userId);
  });
});
