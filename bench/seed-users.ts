/**
 * Creates N users with one session each and writes `[{userId, token}]` to a JSON file, for
 * the benchmark's private-routing scenario:
 *
 *   tsx bench/seed-users.ts --count 10000 --out bench/results/users.json --database-url postgres://…
 *
 * Users are created through `@repo/db` (users + starting balances, then a session whose token
 * hash is stored, exactly as a login stores it), so the gateway authenticates them with the
 * real DB-backed session verifier. What it skips is the login itself: the password hash is a
 * marker no password matches (`verifyPassword` rejects it), so seeding 10,000 users costs no
 * scrypt (50 ms each) and the users cannot log in with a password.
 *
 * Without `--database-url` (and `DATABASE_URL`), `--no-db` writes synthetic users for the bench
 * servers' file-based verifier (`bench/servers/sessions.ts`) instead.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { parseArgs } from 'node:util';
import type { SeededUser } from './servers/sessions.ts';

/** Stored instead of a scrypt hash: not of the `scrypt$N$r$p$salt$hash` form, so it never verifies. */
export const NO_LOGIN_PASSWORD_HASH = 'bench$no-login';
const SESSION_TTL_MS = 7 * 24 * 3600 * 1000;

/** Users per transaction: four multi-row INSERTs per batch instead of four round trips per user. */
const BATCH = 500;

/**
 * Seeds `count` users with sessions in the PostgreSQL database at `databaseUrl`, through
 * `@repo/db`'s schema: the rows `users.create` (user, USD balance, SOL position) and
 * `sessions.create` (token hash, expiry) write, in batches, so 10,000 users take seconds.
 */
export async function seedUsers(databaseUrl: string, count: number): Promise<SeededUser[]> {
  const { openDatabase } = await import('@repo/db');
  const db = await openDatabase({ url: databaseUrl, poolSize: 2 });
  try {
    return await seedUsersInto(db, count);
  } finally {
    await db.close();
  }
}

/** The same, into an open database (PostgreSQL or embedded PGlite); the caller closes it. */
export async function seedUsersInto(db: import('@repo/db').Database, count: number): Promise<SeededUser[]> {
  const { newSessionToken, hashToken, schema } = await import('@repo/db');
  const { randomUUID } = await import('node:crypto');
  const prefix = `bench-${randomBytes(4).toString('hex')}`;
  const expiresAt = new Date(Date.now() + SESSION_TTL_MS);
  const seeded: SeededUser[] = [];
  for (let first = 0; first < count; first += BATCH) {
    const size = Math.min(BATCH, count - first);
    await db.drizzle.transaction(async (tx) => {
      const rows = await tx
        .insert(schema.users)
        .values(
          Array.from({ length: size }, (_, i) => ({
            username: `${prefix}-${first + i}`,
            passwordHash: NO_LOGIN_PASSWORD_HASH,
          })),
        )
        .returning({ id: schema.users.id });
      const ids = rows.map((row) => row.id);
      await tx
        .insert(schema.balances)
        .values(ids.map((userId) => ({ userId, asset: 'USD', available: '10000', locked: '0' })));
      await tx.insert(schema.positions).values(ids.map((userId) => ({ userId, asset: 'SOL' })));
      const batch = ids.map((userId) => ({ userId, token: newSessionToken() }));
      await tx
        .insert(schema.sessions)
        .values(
          batch.map(({ userId, token }) => ({ id: randomUUID(), userId, tokenHash: hashToken(token), expiresAt })),
        );
      seeded.push(...batch);
    });
  }
  return seeded;
}

/** Users for the file-based verifier: ids 1..count, random 43-character tokens. */
export function syntheticUsers(count: number): SeededUser[] {
  return Array.from({ length: count }, (_, i) => ({ userId: i + 1, token: randomBytes(32).toString('base64url') }));
}

export function writeUsers(file: string, users: SeededUser[]): void {
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, JSON.stringify(users));
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      count: { type: 'string' },
      out: { type: 'string' },
      'database-url': { type: 'string' },
      'no-db': { type: 'boolean', default: false },
    },
    strict: true,
  });
  const count = Number(values.count);
  if (!Number.isInteger(count) || count < 1 || count > 1_000_000)
    throw new Error('--count must be an integer from 1 to 1,000,000');
  if (!values.out) throw new Error('--out <file.json> is required');
  const databaseUrl = values['database-url'] ?? process.env.DATABASE_URL;
  if (!databaseUrl && !values['no-db']) {
    throw new Error(
      '--database-url (or DATABASE_URL) is required; pass --no-db for synthetic users of the file verifier',
    );
  }
  const started = Date.now();
  const users = databaseUrl && !values['no-db'] ? await seedUsers(databaseUrl, count) : syntheticUsers(count);
  writeUsers(values.out, users);
  process.stdout.write(
    `seeded ${users.length} users in ${((Date.now() - started) / 1000).toFixed(1)} s → ${values.out}\n`,
  );
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main().catch((err: unknown) => {
    process.stderr.write(`seed-users: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  });
}
