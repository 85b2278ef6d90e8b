import { randomBytes } from 'node:crypto';
import pg from 'pg';

const ADMIN_URL = process.env.TEST_PG_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

/**
 * A fresh PostgreSQL database on the machine's server (or on `adminUrl`'s), for one test file
 * or one benchmark part. `drop()` removes it (and ends any connection still open to it).
 */
/**
 * How long the admin connection may take to open. 3 s was too short once: a CI run's after-hook
 * timed out connecting while the suite, at two test files at a time, loaded the machine's
 * PostgreSQL (2026-11-29, nothing in its log; a dropped SYN is sent again after 1 s, then 3 s).
 */
const ADMIN_CONNECT_TIMEOUT_MS = 10_000;

export async function createTestDatabase(
  prefix = 'tw',
  adminUrl = ADMIN_URL,
): Promise<{ url: string; name: string; drop(): Promise<void> }> {
  const name = `${prefix}_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: adminUrl, connectionTimeoutMillis: ADMIN_CONNECT_TIMEOUT_MS });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    name,
    async drop() {
      const c = new pg.Client({ connectionString: adminUrl, connectionTimeoutMillis: ADMIN_CONNECT_TIMEOUT_MS });
      await c.connect();
      try {
        await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await c.end();
      }
    },
  };
}
