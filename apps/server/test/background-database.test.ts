import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import pg from 'pg';
import { silentLogger, type Logger } from '@repo/log';
import { waitFor } from '@repo/test-support';
import { openDatabaseInBackground } from '../src/background-database.ts';

const ADMIN_URL = process.env.TEST_PG_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const FAST = { baseDelayMs: 20, maxDelayMs: 100 };

function capture(): { logger: Logger; warnings: string[]; retries: () => number } {
  const warnings: string[] = [];
  let retries = 0;
  const logger = {
    ...silentLogger,
    warn: (_data: unknown, message: string) => warnings.push(message),
    debug: () => retries++,
    child: () => logger,
  } as unknown as Logger;
  return { logger, warnings, retries: () => retries };
}

async function admin<T>(work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: ADMIN_URL });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

/** The price worker's database, opened without holding the worker up. */
describe('database opened in the background', () => {
  it('keeps trying while PostgreSQL has no such database, and opens it once there is one', async () => {
    const name = `tw_bg_${randomBytes(5).toString('hex')}`;
    const url = new URL(ADMIN_URL);
    url.pathname = `/${name}`;
    const { logger, warnings, retries } = capture();
    const background = openDatabaseInBackground({ url: url.toString() }, logger, FAST);
    let opened = false;
    void background.ready.then(() => (opened = true));
    try {
      // Several attempts fail; one warning says so, the others are debug lines.
      await waitFor(() => retries() >= 3, { what: 'three failed attempts' });
      assert.equal(opened, false);
      assert.deepEqual(warnings, ['database not reachable; trying again in the background']);

      await admin((client) => client.query(`CREATE DATABASE ${name}`));
      const db = await background.ready;
      assert.deepEqual(await db.candles.list('SOL', '1m', { limit: 1 }), [], 'migrated: the candles table exists');
    } finally {
      await background.close();
      await admin((client) => client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));
    }
  });

  it('stops trying when closed, without waiting for a database that never comes', async () => {
    const background = openDatabaseInBackground({ url: 'postgres://nobody@127.0.0.1:1/none' }, silentLogger, FAST);
    await background.close();
    await assert.rejects(background.ready, /closed before the database could be opened/);
  });
});
