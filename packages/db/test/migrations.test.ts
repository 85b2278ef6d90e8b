import assert from 'node:assert/strict';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { drizzle } from 'drizzle-orm/node-postgres';
import { migrate } from 'drizzle-orm/node-postgres/migrator';
import pg from 'pg';
import { createTestDatabase } from '@repo/test-support';
import { MIGRATIONS_FOLDER, openDatabase, type Database } from '../src/index.ts';
import { order } from './database-suite.ts';

/**
 * The 64-bit id migration on a real PostgreSQL database that holds rows written by the 32-bit
 * schema: every row keeps its values, ids and counters go past 2^31, and a value past 2^53 is
 * refused instead of read as a different number.
 */
describe('migration to 64-bit ids', () => {
  let database: Awaited<ReturnType<typeof createTestDatabase>>;
  let db: Database;
  let admin: pg.Pool;
  let oldFolder: string;

  before(async () => {
    database = await createTestDatabase('tw_migrate');
    admin = new pg.Pool({ connectionString: database.url, max: 2 });
    // pool.end() resolves before its sockets close; dropping the database then ends them with
    // an error the pool emits, which must not be unhandled.
    admin.on('error', () => {});
    // The schema as it was: only the migrations before the 64-bit one.
    oldFolder = await mkdtemp(join(tmpdir(), 'tradewire-migrations-'));
    await cp(MIGRATIONS_FOLDER, oldFolder, { recursive: true });
    const journalPath = join(oldFolder, 'meta', '_journal.json');
    const journal = JSON.parse(await readFile(journalPath, 'utf8')) as { entries: { tag: string }[] };
    const cut = journal.entries.findIndex((e) => e.tag === '0002_bigint_ids');
    assert.ok(cut > 0, 'the 64-bit migration exists');
    journal.entries = journal.entries.slice(0, cut);
    await writeFile(journalPath, JSON.stringify(journal));
    await migrate(drizzle(admin), { migrationsFolder: oldFolder });
  });

  after(async () => {
    await db?.close();
    await admin?.end();
    await database?.drop();
    await rm(oldFolder, { recursive: true, force: true });
  });

  it('keeps existing rows and lets ids and counters pass 2^31', async () => {
    const q = (text: string, values: unknown[] = []) => admin.query<Record<string, string>>(text, values);
    await q(`insert into users (username, password_hash, order_seq, portfolio_version) values ('old_user', 'h', 1, 1)`);
    const userId = Number((await q(`select id from users where username = 'old_user'`)).rows[0]!.id);
    await q(`insert into balances (user_id, asset, available) values ($1, 'USD', '9000.5')`, [userId]);
    await q(`insert into positions (user_id, asset, size, avg_entry_price) values ($1, 'SOL', '10', '99.95')`, [
      userId,
    ]);
    await q(
      `insert into sessions (id, user_id, token_hash, expires_at)
       values ('00000000-0000-4000-8000-000000000001', $1, 'abc', now() + interval '1 day')`,
      [userId],
    );
    await q(
      `insert into orders (user_id, symbol, side, requested_size, status, executed_price, executed_size, fee, seq)
       values ($1, 'SOL', 'buy', '10', 'filled', '99.95', '10', '0.09995', 1)`,
      [userId],
    );
    await q(`insert into outbox (user_id, kind, position, payload) values ($1, 'order_filled', 1, '{"a":1}')`, [
      userId,
    ]);
    // The 32-bit column refuses what the new one must take.
    await assert.rejects(q(`select * from orders where id < 2147483648::bigint and id = $1::integer`, ['2147483648']));

    db = await openDatabase({ url: database.url });

    const types = await q(
      `select table_name, column_name, data_type from information_schema.columns
        where table_schema = 'public'
          and column_name in ('id', 'user_id', 'seq', 'position', 'order_seq', 'portfolio_version', 'order_id')
          and not (table_name = 'sessions' and column_name = 'id')`,
    );
    assert.ok(types.rows.length >= 12);
    for (const row of types.rows as { table_name: string; column_name: string; data_type: string }[]) {
      assert.equal(row.data_type, 'bigint', `${row.table_name}.${row.column_name}`);
    }
    const sequences = await q(`select sequencename, max_value::text from pg_sequences where schemaname = 'public'`);
    for (const s of sequences.rows as { sequencename: string; max_value: string }[]) {
      assert.equal(s.max_value, '9223372036854775807', s.sequencename);
    }

    // Every old row is still there with its values.
    const old = await db.orders.list(userId, { limit: 10 });
    assert.deepEqual(
      old.orders.map((o) => [o.status, o.executedPrice, o.fee, o.seq]),
      [['filled', '99.95', '0.09995', 1]],
    );
    assert.equal(old.seq, 1);
    assert.deepEqual(await db.portfolio.get(userId), {
      balances: [{ asset: 'USD', available: '9000.5', locked: '0' }],
      positions: [{ asset: 'SOL', size: '10', avgEntryPrice: '99.95' }],
      version: 1,
      orderSeq: 1,
    });
    assert.equal((await db.outbox.orderHistory(userId, 0, 10, 1 << 20)).events.length, 1);

    // Past 2^31: order ids, user ids and the user's counters.
    await q(`select setval('orders_id_seq', 3000000000)`);
    await q(`update users set order_seq = 4000000000 where id = $1`, [userId]);
    const { order: placed } = await db.orders.place(order(userId, 'buy', '1', '100'));
    assert.equal(placed.orderId, 3000000001);
    assert.equal(placed.seq, 4000000001);
    const page = await db.orders.list(userId, { limit: 1, before: 2 ** 40 });
    assert.equal(page.orders[0]?.orderId, 3000000001);
    assert.equal(page.seq, 4000000001);
    assert.deepEqual(
      (await db.outbox.orderHistory(userId, 4000000000, 10, 1 << 20)).events.map((e) => e.seq),
      [4000000001],
    );
    await q(`select setval('users_id_seq', 5000000000)`);
    const created = await db.users.create({
      username: 'new_user',
      passwordHash: 'h',
      balances: [],
      positionAssets: [],
    });
    assert.equal(created.userId, 5000000001);
  });

  it('refuses a 64-bit value that JavaScript cannot hold exactly, instead of rounding it', async () => {
    const { rows } = await admin.query<{ id: string }>(`select id from users where username = 'old_user'`);
    const id = rows[0]!.id;
    await admin.query(
      `insert into orders (id, user_id, symbol, side, requested_size, status, reason, seq)
       values (9007199254740993, $1, 'SOL', 'buy', '1', 'rejected', 'no_price', 1)`,
      [id],
    );
    await assert.rejects(db.orders.list(Number(id), { limit: 1 }), { code: 'database_error', message: /safe/ });
    await admin.query(`delete from orders where id = 9007199254740993`);
    assert.equal((await db.orders.list(Number(id), { limit: 1 })).orders.length, 1);
  });
});
