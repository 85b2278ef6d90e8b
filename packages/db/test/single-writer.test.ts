import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { sql } from 'drizzle-orm';
import pg from 'pg';
import { createTestDatabase, waitFor } from '@repo/test-support';
import { NotWriterError, openDatabase, type Database } from '../src/index.ts';

const LOCK_KEY = 424_242;

/**
 * One writer per database: a PostgreSQL advisory lock held on a connection of its own. Two
 * processes are two `Database`s here, each with its own pools, exactly as two processes have.
 */
describe('single writer on PostgreSQL', () => {
  let database: Awaited<ReturnType<typeof createTestDatabase>>;
  let first: Database;
  let second: Database;
  let admin: pg.Client;

  before(async () => {
    database = await createTestDatabase('tw_writer');
    first = await openDatabase({ url: database.url });
    second = await openDatabase({ url: database.url });
    admin = new pg.Client({ connectionString: database.url });
    // Dropping the database at the end ends this connection with an error.
    admin.on('error', () => {});
    await admin.connect();
  });
  after(async () => {
    await first?.close();
    await second?.close();
    await admin?.end();
    await database?.drop();
  });

  it('lets one of two racing writers in, and the other once the first gives up', async () => {
    const a = first.openSingleWriter(LOCK_KEY);
    const b = second.openSingleWriter(LOCK_KEY);
    const [gotA, gotB] = await Promise.all([a.tryAcquire(), b.tryAcquire()]);
    assert.equal(Number(gotA) + Number(gotB), 1, 'exactly one writer');
    const [winner, loser] = gotA ? [a, b] : [b, a];
    assert.equal(await winner.tryAcquire(), true, 'the writer stays the writer');
    assert.equal(await loser.tryAcquire(), false);
    await assert.rejects(
      loser.run(() => Promise.resolve()),
      NotWriterError,
    );
    await winner.run((db) => db.execute(sql`select 1`));

    await winner.close();
    assert.equal(winner.isWriter, false);
    assert.equal(await loser.tryAcquire(), true, 'the lock is free once the writer closed');
    await loser.close();
  });

  it('asks the server to probe the writer’s connection, so a writer whose host vanished frees the lock', async () => {
    // A host that dies without closing its connection keeps its session, and the lock, until the
    // server's TCP keepalive gives up: hours by the OS defaults, unless the session asks sooner.
    const writer = first.openSingleWriter(LOCK_KEY);
    assert.equal(await writer.tryAcquire(), true);
    const result = await writer.run((db) =>
      db.execute(sql`select current_setting('tcp_keepalives_idle') as idle,
                            current_setting('tcp_keepalives_interval') as interval,
                            current_setting('tcp_keepalives_count') as count`),
    );
    const row = (result as { rows: Record<string, string>[] }).rows[0]!;
    assert.deepEqual(row, { idle: '10', interval: '5', count: '3' });
    await writer.close();
  });

  it('frees the lock when the writer’s connection dies, and the dead writer writes nothing more', async () => {
    const a = first.openSingleWriter(LOCK_KEY);
    const b = second.openSingleWriter(LOCK_KEY);
    assert.equal(await a.tryAcquire(), true);
    assert.equal(await b.tryAcquire(), false);

    // The writer's connection is cut, as by a crash, a network failure or an administrator.
    const { rows } = await admin.query<{ pid: number }>(
      `select pid from pg_locks where locktype = 'advisory' and objid = $1 and granted`,
      [LOCK_KEY],
    );
    assert.equal(rows.length, 1);
    await admin.query('select pg_terminate_backend($1)', [rows[0]!.pid]);
    // The signal is sent at once; the backend ends, and frees the lock, a moment later.
    await waitFor(
      async () =>
        (await admin.query(`select 1 from pg_locks where locktype = 'advisory' and objid = $1`, [LOCK_KEY])).rows
          .length === 0,
      { what: 'the killed session to end' },
    );

    assert.equal(await b.tryAcquire(), true, 'the other process takes over');
    await assert.rejects(a.run((db) => db.execute(sql`select 1`)));
    assert.equal(a.isWriter, false);
    // The old writer may come back, but only as a standby.
    assert.equal(await a.tryAcquire(), false);
    await a.close();
    await b.close();
  });
});
