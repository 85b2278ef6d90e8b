import { randomBytes } from 'node:crypto';
import pg from 'pg';

/** The local test server's maintenance database (trust auth, user postgres). */
export const DEFAULT_ADMIN_URL = 'postgres://postgres@127.0.0.1:5432/test';

export interface TempPostgresDatabase {
  /** Connection string of the new database. */
  readonly url: string;
  readonly name: string;
  /** Drops the database, closing any connection still open to it. */
  drop(): Promise<void>;
}

/**
 * Creates a fresh, empty PostgreSQL database `tw_<random>` for one test file or one run, via
 * `adminUrl` (default: `TEST_DATABASE_ADMIN_URL` or the local `test` database). The caller
 * drops it when done.
 */
export async function createTempPostgresDatabase(adminUrl = process.env.TEST_DATABASE_ADMIN_URL ?? DEFAULT_ADMIN_URL): Promise<TempPostgresDatabase> {
  const name = `tw_${randomBytes(6).toString('hex')}`;
  await adminQuery(adminUrl, `create database ${name}`);
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  let dropped: Promise<void> | undefined;
  return {
    url: url.toString(),
    name,
    drop() {
      // WITH (FORCE) (PostgreSQL 13+) ends connections a failed test left open.
      dropped ??= adminQuery(adminUrl, `drop database if exists ${name} with (force)`);
      return dropped;
    },
  };
}

async function adminQuery(adminUrl: string, text: string): Promise<void> {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    await client.query(text);
  } finally {
    await client.end();
  }
}
