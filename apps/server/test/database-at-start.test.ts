import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { DatabaseError } from '@repo/db';
import { silentLogger, type Logger } from '@repo/log';
import { createTestDatabase, TcpProxy, waitFor } from '@repo/test-support';
import { openDatabaseAtStart } from '../src/database-at-start.ts';

const FAST = { baseDelayMs: 20, maxDelayMs: 100 };

function capture(): { logger: Logger; warnings: string[] } {
  const warnings: string[] = [];
  const logger = {
    ...silentLogger,
    warn: (_data: unknown, message: string) => warnings.push(message),
    child: () => logger,
  } as unknown as Logger;
  return { logger, warnings };
}

/** Whether `promise` has settled yet, either way, when asked. */
function settledFlag(promise: Promise<unknown>): () => boolean {
  let settled = false;
  void promise.then(
    () => (settled = true),
    () => (settled = true),
  );
  return () => settled;
}

/** The API's and the gateway's database, which their start waits a while for. */
describe('database opened at start', () => {
  let database: Awaited<ReturnType<typeof createTestDatabase>>;
  let proxy: TcpProxy;
  /** The test database, reached through the proxy. */
  let proxiedUrl: string;

  before(async () => {
    database = await createTestDatabase('tw_start');
    const url = new URL(database.url);
    proxy = await TcpProxy.start({ port: Number(url.port || 5432), host: url.hostname });
    url.port = String(proxy.port);
    proxiedUrl = url.toString();
  });
  after(async () => {
    await proxy.stop();
    await database.drop();
  });

  it('keeps trying while each connection ends before PostgreSQL answers, and opens once one gets through', async () => {
    // What a gateway worker met in a reconnect storm: "Connection terminated unexpectedly".
    proxy.cut();
    const { logger, warnings } = capture();
    const opening = openDatabaseAtStart({ url: proxiedUrl }, logger, { windowMs: 60_000, retry: FAST });
    const settled = settledFlag(opening);
    try {
      await waitFor(() => warnings.length >= 3, { what: 'three failed attempts' });
      assert.equal(settled(), false, 'still trying');
      assert.ok(warnings.every((w) => w === 'database not reachable; trying again'));
    } finally {
      proxy.restore();
    }
    const db = await opening;
    try {
      const { userId } = await db.users.create({
        username: 'start_waiter',
        passwordHash: 'not-a-real-hash',
        balances: [{ asset: 'USD', available: '100' }],
        positionAssets: ['SOL'],
      });
      assert.ok(userId > 0, 'migrated and writable');
    } finally {
      await db.close();
    }
  });

  it('keeps trying while PostgreSQL answers "not now" (53300: too many connections), then opens', async () => {
    // A role at its connection limit gets SQLSTATE 53300 from the server itself, as every
    // client does when max_connections is reached. A superuser ignores the limit, so the
    // database gets an owner of its own that may create the schema.
    const role = `tw_start_${randomBytes(4).toString('hex')}`;
    const admin = new pg.Client({ connectionString: database.url });
    await admin.connect();
    const limited = await createTestDatabase('tw_start_limit');
    try {
      await admin.query(`CREATE ROLE ${role} LOGIN CONNECTION LIMIT 0`);
      await admin.query(`ALTER DATABASE ${limited.name} OWNER TO ${role}`);
      const url = new URL(limited.url);
      url.username = role;
      const { logger, warnings } = capture();
      const opening = openDatabaseAtStart({ url: url.toString() }, logger, { windowMs: 60_000, retry: FAST });
      const settled = settledFlag(opening);
      try {
        await waitFor(() => warnings.length >= 3, { what: 'three refused attempts' });
        assert.equal(settled(), false, 'still trying');
      } finally {
        await admin.query(`ALTER ROLE ${role} CONNECTION LIMIT -1`);
      }
      const db = await opening;
      await db.close();
    } finally {
      await limited.drop();
      await admin.query(`DROP ROLE IF EXISTS ${role}`);
      await admin.end();
    }
  });

  it('fails at once on an answer that will not change: no such database', async () => {
    const url = new URL(database.url);
    url.pathname = '/tw_start_no_such_database';
    const { logger, warnings } = capture();
    await assert.rejects(
      openDatabaseAtStart({ url: url.toString() }, logger, { windowMs: 60_000, retry: FAST }),
      (err: unknown) => err instanceof DatabaseError && err.sqlState === '3D000',
    );
    assert.deepEqual(warnings, [], 'not retried');
  });

  it('gives up when PostgreSQL stays out of reach past the window, with the last error', async () => {
    proxy.cut();
    const { logger, warnings } = capture();
    try {
      await assert.rejects(
        openDatabaseAtStart({ url: proxiedUrl }, logger, { windowMs: 300, retry: FAST }),
        (err: unknown) => err instanceof DatabaseError && /terminated/i.test(err.message),
      );
      assert.ok(warnings.length >= 1, 'tried more than once before giving up');
    } finally {
      proxy.restore();
    }
  });
});
