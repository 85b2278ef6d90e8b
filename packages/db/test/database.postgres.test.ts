import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { drizzle } from 'drizzle-orm/node-postgres';
import pg from 'pg';
import { createTestDatabase } from '@repo/test-support';
import { hashToken, newSessionToken, openDatabase, SessionNotActiveError, type Database } from '../src/index.ts';
import { createOrdersRepository } from '../src/orders.ts';
import { postgresStatements, type Query } from '../src/statements.ts';
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
 * A logout that lands between an order's read and its write: the write's own session guard
 * must refuse it (the read saw the session active). The repository runs on a statement runner
 * that revokes the session right after the order's read, the one moment no test can hit from
 * outside.
 */
describe('an order whose session is revoked between its read and its write (PostgreSQL)', () => {
  let database: Awaited<ReturnType<typeof createTestDatabase>>;
  let db: Database;
  let pool: pg.Pool;
  before(async () => {
    database = await createTestDatabase();
    db = await openDatabase({ url: database.url });
    pool = new pg.Pool({ connectionString: database.url, max: 2 });
  });
  after(async () => {
    await pool?.end();
    await db?.close();
    await database?.drop();
  });

  it('writes nothing and is refused, filled or rejected', async () => {
    for (const price of ['10', null]) {
      const userId = await newUser(db);
      const { sessionId } = await db.sessions.create({
        userId,
        tokenHash: hashToken(newSessionToken()),
        expiresAt: new Date(Date.now() + 3_600_000),
      });
      const runner = postgresStatements(pool);
      const query: Query = async (s, values) => {
        const rows = await runner.query(s, values);
        if (s.name === 'orders_snapshot') await db.sessions.revoke(sessionId, new Date());
        return rows;
      };
      const orders = createOrdersRepository(drizzle(pool), { ...runner, query });
      await assert.rejects(
        orders.place({ ...order(userId, 'buy', '1', price), session: { id: sessionId, at: new Date() } }),
        SessionNotActiveError,
      );
      const page = await db.orders.list(userId, { limit: 10 });
      assert.deepEqual(page, { orders: [], nextBefore: null, seq: 0 }, `price ${price}: nothing written`);
    }
  });
});
