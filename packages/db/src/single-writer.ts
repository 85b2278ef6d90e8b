import { drizzle as drizzlePg } from 'drizzle-orm/node-postgres';
import pg from 'pg';
import type { Logger } from '@repo/log';
import type { DrizzleDb } from './drizzle.ts';
import { toDatabaseError } from './errors.ts';

/** Lock key of the candle writer: one per database, whichever process holds it. */
export const CANDLE_WRITER_LOCK_KEY = 7_382_114_002;

/** The server's TCP keepalive on the writer's session: a dead writer is found in ~10 + 3 × 5 s. */
export const KEEPALIVE = { idleS: 10, intervalS: 5, count: 3 };

/** `run` was called while this process is not the writer. */
export class NotWriterError extends Error {
  readonly code = 'not_writer';
  constructor() {
    super('this process does not hold the writer lock');
    this.name = 'NotWriterError';
  }
}

/**
 * The right to be the only writer of something in the database, among every process that
 * opens one with the same lock key.
 */
export interface SingleWriter {
  /** True while this process holds the lock. */
  readonly isWriter: boolean;
  /**
   * Becomes the writer when no other session is; never waits for another session. Resolves to
   * `isWriter`: false means another process writes. Rejects with a `DatabaseError` when the
   * database cannot be reached, which says nothing about who writes.
   */
  tryAcquire(): Promise<boolean>;
  /**
   * Runs `work` on the lock's own connection while the lock is held; rejects with
   * `NotWriterError` otherwise. A lost connection loses the lock and fails the work with it,
   * so nothing is ever written by a process that is no longer the writer.
   */
  run<T>(work: (db: DrizzleDb) => Promise<T>): Promise<T>;
  /** Releases the lock and closes its connection. */
  close(): Promise<void>;
}

/**
 * PostgreSQL: a session advisory lock (`pg_try_advisory_lock`) held on a dedicated connection,
 * outside the pool. The lock lives exactly as long as that connection, so a writer that
 * crashes or loses its network frees it for another process, and the work runs on the same
 * connection so it cannot outlive the lock.
 */
export function openPostgresSingleWriter(
  url: string,
  lockKey: number,
  options: { logger: Logger; statementTimeoutMs?: number },
): SingleWriter {
  const { logger } = options;
  let client: pg.Client | null = null;
  let handle: DrizzleDb | null = null;
  let held = false;
  let closed = false;

  const lose = (lost: pg.Client, why: string) => {
    if (client !== lost) return;
    if (held) logger.warn({ why }, 'writer connection lost; the lock is free for another process');
    client = null;
    handle = null;
    held = false;
    lost.end().catch(() => {});
  };

  return {
    get isWriter() {
      return held;
    },
    async tryAcquire() {
      if (held || closed) return held;
      try {
        if (!client) {
          const c = new pg.Client({
            connectionString: url,
            connectionTimeoutMillis: 5000,
            statement_timeout: options.statementTimeoutMs ?? 30_000,
            keepAlive: true,
          });
          // Unhandled, a dropped connection's 'error' would kill the process.
          c.on('error', (err) => lose(c, err.message));
          c.on('end', () => lose(c, 'connection ended'));
          try {
            await c.connect();
            // A writer whose host dies without closing its connection (power, a network cut)
            // would hold the lock until the server's TCP keepalive gives up: hours by the OS
            // defaults, the standbys dropping their candles meanwhile. These probes make the
            // server end the session, and free the lock, within about 25 s. Set as statements,
            // not as startup options, which a pooler in session mode (PgBouncer) refuses.
            await c
              .query(
                `set tcp_keepalives_idle = ${KEEPALIVE.idleS}; ` +
                  `set tcp_keepalives_interval = ${KEEPALIVE.intervalS}; ` +
                  `set tcp_keepalives_count = ${KEEPALIVE.count}`,
              )
              // Without them the writer still writes; only a vanished host is found later.
              .catch((err: Error) => logger.warn({ err: err.message }, 'writer connection keepalive not set'));
          } catch (err) {
            c.end().catch(() => {});
            throw err;
          }
          if (closed) {
            await c.end();
            return false;
          }
          client = c;
          handle = drizzlePg(c);
        }
        const result = await client.query<{ locked: boolean }>('select pg_try_advisory_lock($1) as locked', [lockKey]);
        held = result.rows[0]?.locked === true;
        return held;
      } catch (err) {
        if (client) lose(client, 'lock attempt failed');
        throw toDatabaseError(err);
      }
    },
    async run(work) {
      if (!held || !handle) throw new NotWriterError();
      return work(handle);
    },
    async close() {
      closed = true;
      const c = client;
      client = null;
      handle = null;
      if (!c) return;
      try {
        if (held) await c.query('select pg_advisory_unlock($1)', [lockKey]);
      } catch {
        // Ending the connection frees the lock anyway.
      } finally {
        held = false;
        await c.end().catch(() => {});
      }
    },
  };
}

/** PGlite: one process owns the database, so its one writer always holds the right. */
export function pgliteSingleWriter(db: DrizzleDb): SingleWriter {
  let closed = false;
  return {
    get isWriter() {
      return !closed;
    },
    tryAcquire: () => Promise.resolve(!closed),
    async run(work) {
      if (closed) throw new NotWriterError();
      return work(db);
    },
    close() {
      closed = true;
      return Promise.resolve();
    },
  };
}
