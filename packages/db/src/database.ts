import { mkdir } from 'node:fs/promises';
import { PGlite } from '@electric-sql/pglite';
import { sql } from 'drizzle-orm';
import { drizzle as drizzlePglite } from 'drizzle-orm/pglite';
import { drizzle as drizzlePg } from 'drizzle-orm/node-postgres';
import pg from 'pg';
import { silentLogger, type Logger } from '@repo/log';
import type { DrizzleDb } from './drizzle.ts';
import { toDatabaseError } from './errors.ts';
import { migratePgliteDatabase, migratePostgres } from './migrate.ts';
import { createOrdersRepository, type OrdersRepository } from './orders.ts';
import { createOutboxRepository, type OutboxRepository } from './outbox.ts';
import { createPortfolioRepository, type PortfolioRepository } from './portfolio.ts';
import { createSessionsRepository, type SessionsRepository } from './sessions.ts';
import { createUsersRepository, type UsersRepository } from './users.ts';

export interface DatabaseOptions {
  /** PostgreSQL connection string (`DATABASE_URL`). When set, PostgreSQL is used. */
  url?: string;
  /**
   * Directory of the embedded PGlite database when `url` is unset (`DATA_DIR`, the launcher's
   * default is `./data`). `memory://` keeps it in memory (tests).
   */
  dataDir?: string;
  logger?: Logger;
  /** Most PostgreSQL connections in the pool (default 10). */
  poolSize?: number;
  /** Clock of order timestamps (tests). */
  now?: () => Date;
}

/** The store behind the API and the gateway's session verifier. */
export interface Database {
  readonly kind: 'postgres' | 'pglite';
  readonly users: UsersRepository;
  readonly sessions: SessionsRepository;
  readonly orders: OrdersRepository;
  readonly portfolio: PortfolioRepository;
  readonly outbox: OutboxRepository;
  /** The drizzle handle, for queries the repositories do not cover (tests, tools). */
  readonly drizzle: DrizzleDb;
  /** Resolves when the database answers a trivial query (health check). */
  ping(): Promise<void>;
  close(): Promise<void>;
}

/**
 * Opens the database and applies pending migrations: PostgreSQL through a `pg` pool when
 * `url` is set, else embedded PGlite persisted in `dataDir`.
 *
 * PGlite is a single connection; it runs one transaction at a time (its own mutex queues the
 * others, and queries outside a transaction wait for it), so the row locks that order
 * transactions take on PostgreSQL are trivially satisfied there.
 */
export async function openDatabase(options: DatabaseOptions): Promise<Database> {
  const logger = options.logger ?? silentLogger;
  if (options.url) {
    const pool = new pg.Pool({
      connectionString: options.url,
      max: options.poolSize ?? 10,
      connectionTimeoutMillis: 5000,
      idleTimeoutMillis: 30_000,
    });
    // An idle client losing its connection emits 'error' on the pool; unhandled, it would kill
    // the process. The pool replaces the client on the next checkout.
    pool.on('error', (err) => logger.warn({ err: err.message }, 'postgres idle client error'));
    try {
      await migratePostgres(pool);
    } catch (err) {
      await pool.end().catch(() => {});
      throw toDatabaseError(err);
    }
    logger.info({ kind: 'postgres' }, 'database ready');
    return assemble('postgres', drizzlePg(pool), options, () => pool.end());
  }

  if (!options.dataDir) throw new TypeError('openDatabase needs `url` (PostgreSQL) or `dataDir` (embedded PGlite)');
  const inMemory = options.dataDir.startsWith('memory://');
  if (!inMemory) await mkdir(options.dataDir, { recursive: true });
  const client = inMemory ? new PGlite() : new PGlite(options.dataDir);
  try {
    await client.waitReady;
    await migratePgliteDatabase(client);
  } catch (err) {
    await client.close().catch(() => {});
    throw toDatabaseError(err);
  }
  logger.info({ kind: 'pglite', dataDir: options.dataDir }, 'database ready');
  return assemble('pglite', drizzlePglite(client), options, () => client.close());
}

function assemble(
  kind: Database['kind'],
  db: DrizzleDb,
  options: DatabaseOptions,
  closeClient: () => Promise<void>,
): Database {
  let closed: Promise<void> | undefined;
  return {
    kind,
    users: createUsersRepository(db),
    sessions: createSessionsRepository(db),
    orders: createOrdersRepository(db, { now: options.now }),
    portfolio: createPortfolioRepository(db),
    outbox: createOutboxRepository(db),
    drizzle: db,
    async ping() {
      try {
        await db.execute(sql`select 1`);
      } catch (err) {
        throw toDatabaseError(err);
      }
    },
    close() {
      closed ??= closeClient();
      return closed;
    },
  };
}
