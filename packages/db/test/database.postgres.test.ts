import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { drizzle } from 'drizzle-orm/node-postgres';
import pg from 'pg';
import { createTestDatabase } from '@repo/test-support';
import { hashToken, newSessionToken, openDatabase, SessionNotActiveError, type Database } from '../src/index.ts';
import { createOrdersRepository } from '../src/orders.ts';
import { postgresStatements, type Query, type Row } from '../src/statements.ts';
import { databaseSuite, newUser, order } from './database-suite.ts';

let suiteDatabase: Awaited<ReturnType<typeof createTestDatabase>> | undefined;
databaseSuite(
  'PostgreSQL',
  async () => {
    suiteDatabase = await createTestDatabase();
    return openDatabase({ url: suiteDatabase.url });
  },
  async () => {
    await suiteDatabase?.drop();
  },
);

/**
 * A logout that lands in the middle of an order, at the moments no test can hit from outside:
 * the repository runs on a statement runner that calls a hook after a named statement, inside
 * the order's transaction where it has one.
 */
/**
 * A database of the describe block's own, opened as the API opens it, and a pool of `poolSize`
 * raw connections beside it; dropped after the block.
 */
function ownDatabase(poolSize: number): { db: Database; pool: pg.Pool } {
  let database: Awaited<ReturnType<typeof createTestDatabase>> | undefined;
  const stand = {} as { db: Database; pool: pg.Pool };
  before(async () => {
    database = await createTestDatabase();
    stand.db = await openDatabase({ url: database.url });
    stand.pool = new pg.Pool({ connectionString: database.url, max: poolSize });
    // The drop at the end (WITH (FORCE)) terminates any connection still open; an idle client's
    // error then reaches the pool, and without a listener it is an uncaught exception that
    // fails the file (seen once in CI, 2026-11-29). What a query meets still rejects the query.
    stand.pool.on('error', () => {});
  });
  after(async () => {
    await stand.pool?.end();
    await stand.db?.close();
    await database?.drop();
  });
  return stand;
}

describe('an order whose session is revoked while it runs (PostgreSQL)', () => {
  const stand = ownDatabase(2);

  type Hooks = Record<string, (rows: Row[]) => Promise<void>>;
  const ordersWith = (hooks: Hooks) => {
    const runner = postgresStatements(stand.pool);
    const hooked =
      (query: Query): Query =>
      async (s, values) => {
        const rows = await query(s, values);
        await hooks[s.name]?.(rows);
        return rows;
      };
    return createOrdersRepository(drizzle(stand.pool), {
      query: hooked(runner.query),
      transaction: (run) => runner.transaction((query) => run(hooked(query))),
    });
  };
  const userWithSession = async () => {
    const userId = await newUser(stand.db);
    const { sessionId } = await stand.db.sessions.create({
      userId,
      tokenHash: hashToken(newSessionToken()),
      expiresAt: new Date(Date.now() + 3_600_000),
    });
    return { userId, sessionId };
  };
  const nothingWritten = async (userId: number, what: string) =>
    assert.deepEqual(await stand.db.orders.list(userId, { limit: 10 }), { orders: [], nextBefore: null, seq: 0 }, what);

  it('between its read and its write: the write writes nothing, filled or rejected', async () => {
    for (const price of ['10', null]) {
      const { userId, sessionId } = await userWithSession();
      const orders = ordersWith({
        orders_snapshot: async () => void (await stand.db.sessions.revoke(sessionId, new Date())),
      });
      await assert.rejects(
        orders.place({ ...order(userId, 'buy', '1', price), session: { id: sessionId, at: new Date() } }),
        SessionNotActiveError,
      );
      await nothingWritten(userId, `price ${price}`);
    }
  });

  it('before the statement-by-statement path (a missing position) writes nothing either', async () => {
    const { userId, sessionId } = await userWithSession();
    const orders = ordersWith({
      orders_snapshot: async () => void (await stand.db.sessions.revoke(sessionId, new Date())),
    });
    const btc = { ...order(userId, 'buy', '0.01', '50000'), symbol: 'BTC' };
    await assert.rejects(orders.place({ ...btc, session: { id: sessionId, at: new Date() } }), SessionNotActiveError);
    await nothingWritten(userId, 'BTC');
  });

  it('while the locked path holds the user: the logout goes through and the order is refused', async () => {
    const { userId, sessionId } = await userWithSession();
    let revoked: boolean | Error | undefined;
    const orders = ordersWith({
      // A seq that moved since the read sends the order to the locked path.
      orders_snapshot: (rows) => {
        const counters = rows.find((row) => row.kind === 'u')!;
        counters.a = String(Number(counters.a) + 5);
        return Promise.resolve();
      },
      // The user's row is locked now. The logout's outbox row checks its foreign key on that
      // row while it holds the session row the order waits for next: it must not wait for the
      // order (a deadlock, one of the two failing), only the order for it.
      orders_lock: async () => {
        revoked = await Promise.race([
          stand.db.sessions.revoke(sessionId, new Date()),
          new Promise<Error>((resolve) => setTimeout(() => resolve(new Error('logout waited 3 s')), 3000).unref()),
        ]);
      },
    });
    await assert.rejects(
      orders.place({ ...order(userId, 'buy', '1', '10'), session: { id: sessionId, at: new Date() } }),
      SessionNotActiveError,
    );
    assert.equal(revoked, true, 'the logout committed while the order held the user');
    await nothingWritten(userId, 'locked path');
  });

  it('after the locked path holds the session: the logout waits for the order, which commits', async () => {
    const { userId, sessionId } = await userWithSession();
    let logoutSettled = false;
    let settledBeforeCommit: boolean | undefined;
    let logout: Promise<boolean> | undefined;
    const orders = ordersWith({
      orders_snapshot: (rows) => {
        const counters = rows.find((row) => row.kind === 'u')!;
        counters.a = String(Number(counters.a) + 5);
        return Promise.resolve();
      },
      orders_lock_session: () => {
        logout = stand.db.sessions.revoke(sessionId, new Date()).finally(() => (logoutSettled = true));
        return Promise.resolve();
      },
      // The locked path's last statement before its commit (the optimistic path's write, which
      // found the seq moved, ran before the logout began). The logout is seen waiting on a lock,
      // which only this order holds, before the order lets go. The order of the two answers at
      // the client would prove nothing: PostgreSQL releases the locks before it answers the
      // COMMIT, so the logout's answer may arrive first.
      orders_write_fill: async () => {
        if (!logout) return;
        await waitForLockWaiter();
        settledBeforeCommit = logoutSettled;
      },
    });
    const placed = await orders.place({
      ...order(userId, 'buy', '1', '10'),
      session: { id: sessionId, at: new Date() },
    });
    assert.equal(placed.order.status, 'filled');
    assert.equal(settledBeforeCommit, false, 'the logout committed while the order held the session');
    assert.equal(await logout, true);
    assert.equal((await stand.db.sessions.findStates([sessionId], new Date())).get(sessionId), 'revoked');
  });

  /** Resolves once some session of this database waits on a lock; fails after 5 s. */
  const waitForLockWaiter = async () => {
    const deadline = Date.now() + 5000;
    for (;;) {
      const { rows } = await stand.pool.query<{ n: number }>(
        `select count(*)::int as n from pg_stat_activity
          where datname = current_database() and wait_event_type = 'Lock'`,
      );
      if (rows[0]!.n > 0) return;
      if (Date.now() > deadline) throw new Error('no logout waited on a lock within 5 s');
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  };
});

describe('group commit beside a user row another transaction holds (PostgreSQL)', () => {
  const stand = ownDatabase(1);

  it("fills the batch's other users at once; the held user's order waits for its own lock alone", async () => {
    const held = await newUser(stand.db);
    const others = await Promise.all([1, 2, 3].map(() => newUser(stand.db)));
    // Held as `orders.list` holds it while it reads: the batch's write must not wait for it.
    const holder = await stand.pool.connect();
    try {
      await holder.query('begin');
      await holder.query('select id from users where id = $1 for share', [held]);
      let heldSettled = false;
      // In one tick: one read and one write for the four.
      const heldOrder = stand.db.orders.place(order(held, 'buy', '1', '10')).finally(() => (heldSettled = true));
      const otherOrders = others.map((userId) => stand.db.orders.place(order(userId, 'buy', '1', '10')));
      const waited = new Promise<never>((_, reject) =>
        setTimeout(() => reject(new Error("the other users' orders waited for the held row")), 5000).unref(),
      );
      const filled = await Promise.race([Promise.all(otherOrders), waited]);
      assert.deepEqual(
        filled.map((r) => [r.order.status, r.order.seq]),
        others.map(() => ['filled', 1]),
      );
      assert.equal(heldSettled, false, 'the held user could not have written');
      await holder.query('commit');
      const placed = await heldOrder;
      assert.deepEqual([placed.order.status, placed.order.seq], ['filled', 1]);
    } finally {
      holder.release();
    }
  });
});
