import type { PGlite } from '@electric-sql/pglite';
import { sql } from 'drizzle-orm';
import { drizzle as drizzlePglite } from 'drizzle-orm/pglite';
import { drizzle as drizzlePg } from 'drizzle-orm/node-postgres';
import pg from 'pg';
import { silentLogger, type Logger } from '@repo/log';
import type { DrizzleDb } from './drizzle.ts';
import { toDatabaseError } from './errors.ts';
import { migratePostgres } from './migrate.ts';
import { DEFAULT_PGLITE_TEMPLATE_DIR, openPglite } from './pglite-open.ts';
import { createCandlesRepository, type CandlesRepository } from './candles.ts';
import { createOrdersRepository, ORDER_BATCH_CONNECTIONS, type OrdersRepository } from './orders.ts';
import { createOutboxRepository, type OutboxRepository } from './outbox.ts';
import {
  createPortfolioRepository,
  type BalanceView,
  type PortfolioRepository,
  type PositionView,
} from './portfolio.ts';
import { createSessionsRepository, type SessionsRepository } from './sessions.ts';
import { pgliteStatements, postgresStatements, type StatementRunner } from './statements.ts';
import { openPostgresSingleWriter, pgliteSingleWriter, type SingleWriter } from './single-writer.ts';
import { createUsersRepository, type UsersRepository } from './users.ts';

/** A PortfolioUpdateEvent of @repo/events (structurally; this package does not import it). */
export interface PortfolioEventPayload {
  userId: number;
  balances: BalanceView[];
  positions: PositionView[];
  timestamp: string;
  version?: number;
  /** The `seq` of the last order event this portfolio reflects (0 before the first order). */
  orderSeq: number;
}

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
  /**
   * PostgreSQL only: the session lookups (`sessions.findActive`, `sessions.findStates`) run on a pool of its
   * own of `sessionLookupPoolSize` connections (default 4) whose statements the server
   * cancels after `sessionLookupTimeoutMs` (default 2000 ms, below the gateway's 5 s auth
   * deadline); waiting for a free connection is bounded by the same time. A slow or locked
   * database then fails token checks quickly and leaves no query behind, and token floods
   * cannot take the connections orders need. PGlite runs one statement at a time in process
   * and has no statement timeout.
   */
  sessionLookupTimeoutMs?: number;
  sessionLookupPoolSize?: number;
  /**
   * Where PGlite keeps its template of a fresh, migrated database (default: a folder in the
   * system temp directory); null to always run initdb. See `pglite-open.ts`.
   */
  pgliteTemplateDir?: string | null;
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
  /** Candles, read and written through the pool (the candle writer writes through `openSingleWriter`). */
  readonly candles: CandlesRepository;
  /**
   * The right to be the only writer for `lockKey` among every process on this database: on
   * PostgreSQL an advisory lock on a connection of its own, on PGlite (one process) always
   * granted. The caller closes it before the database.
   */
  openSingleWriter(lockKey: number): SingleWriter;
  /**
   * The user's current portfolio in the shape of a `portfolio` event (`version` left out
   * before the first fill), for the gateway's snapshot when the broker has none; null for an
   * unknown user.
   */
  getPortfolioEvent(userId: number): Promise<PortfolioEventPayload | null>;
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
    const url = options.url;
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
    const lookupTimeoutMs = options.sessionLookupTimeoutMs ?? 2000;
    if (!Number.isInteger(lookupTimeoutMs) || lookupTimeoutMs < 1) {
      await pool.end().catch(() => {});
      throw new TypeError(`sessionLookupTimeoutMs must be a positive integer, got ${lookupTimeoutMs}`);
    }
    const lookupPool = new pg.Pool({
      connectionString: options.url,
      max: options.sessionLookupPoolSize ?? 4,
      // Sent as a startup parameter: the server enforces it on every statement of these
      // connections, lock waits included, and cancels the statement itself.
      statement_timeout: lookupTimeoutMs,
      // A backstop when the server cannot even answer (network gone): the client gives up.
      query_timeout: lookupTimeoutMs + 1000,
      connectionTimeoutMillis: lookupTimeoutMs,
      idleTimeoutMillis: 30_000,
    });
    lookupPool.on('error', (err) => logger.warn({ err: err.message }, 'postgres idle client error (session lookups)'));
    // The order path's batched statements (statement-batches.ts), one of each kind at a time:
    // a pool of their own, because they need one plan whatever their values. They take
    // arrays, and left to choose, PostgreSQL planned them anew on every call (the plan for the
    // arrays' actual length looked cheaper than the generic one): a millisecond of planning
    // for a statement that runs in a tenth of one. On the main pool the setting would also
    // hold for drizzle's statements, which do better with plans for their values.
    const batchPool = new pg.Pool({
      connectionString: options.url,
      max: ORDER_BATCH_CONNECTIONS,
      connectionTimeoutMillis: 5000,
      idleTimeoutMillis: 30_000,
      options: '-c plan_cache_mode=force_generic_plan',
    });
    batchPool.on('error', (err) => logger.warn({ err: err.message }, 'postgres idle client error (order batches)'));
    logger.info({ kind: 'postgres' }, 'database ready');
    return assemble(
      'postgres',
      drizzlePg(pool),
      options,
      async () => {
        await Promise.all([pool.end(), lookupPool.end(), batchPool.end()]);
      },
      drizzlePg(lookupPool),
      (lockKey) => openPostgresSingleWriter(url, lockKey, { logger }),
      { main: postgresStatements(pool), lookup: postgresStatements(lookupPool), batch: postgresStatements(batchPool) },
    );
  }

  if (!options.dataDir) throw new TypeError('openDatabase needs `url` (PostgreSQL) or `dataDir` (embedded PGlite)');
  let client: PGlite;
  try {
    client = await openPglite(options.dataDir, {
      templateDir: options.pgliteTemplateDir === undefined ? DEFAULT_PGLITE_TEMPLATE_DIR : options.pgliteTemplateDir,
      logger,
    });
  } catch (err) {
    throw toDatabaseError(err);
  }
  logger.info({ kind: 'pglite', dataDir: options.dataDir }, 'database ready');
  const pgliteDb = drizzlePglite(client);
  return assemble(
    'pglite',
    pgliteDb,
    options,
    () => client.close(),
    pgliteDb,
    () => pgliteSingleWriter(pgliteDb),
    { main: pgliteStatements(client), lookup: pgliteStatements(client), batch: pgliteStatements(client) },
  );
}

function assemble(
  kind: Database['kind'],
  db: DrizzleDb,
  options: DatabaseOptions,
  closeClient: () => Promise<void>,
  lookup: DrizzleDb,
  openSingleWriter: (lockKey: number) => SingleWriter,
  statements: { main: StatementRunner; lookup: StatementRunner; batch: StatementRunner },
): Database {
  let closed: Promise<void> | undefined;
  const now = options.now ?? (() => new Date());
  const portfolio = createPortfolioRepository(db);
  return {
    kind,
    users: createUsersRepository(db),
    sessions: createSessionsRepository(db, lookup, statements.lookup),
    orders: createOrdersRepository(db, statements.main, { now, batch: statements.batch }),
    portfolio,
    async getPortfolioEvent(userId) {
      const view = await portfolio.get(userId);
      if (!view) return null;
      return {
        userId,
        balances: view.balances,
        positions: view.positions,
        timestamp: now().toISOString(),
        ...(view.version > 0 ? { version: view.version } : {}),
        orderSeq: view.orderSeq,
      };
    },
    outbox: createOutboxRepository(db, statements.main),
    candles: createCandlesRepository(db),
    openSingleWriter,
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
