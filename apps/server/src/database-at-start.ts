import { DatabaseError, openDatabase, type Database, type DatabaseOptions } from '@repo/db';
import type { Logger } from '@repo/log';
import { backoffDelay, type BackoffOptions } from '@repo/retry';

export interface StartWindow {
  /** How long to keep trying an unreachable PostgreSQL before the start fails. */
  windowMs: number;
  retry: BackoffOptions;
}

/** 30 s: longer than PostgreSQL's own restart, short enough that a wrong host fails the start soon. */
export const START_WINDOW: StartWindow = { windowMs: 30_000, retry: { baseDelayMs: 250, maxDelayMs: 5000 } };

/**
 * SQLSTATEs a server sends while it cannot take the connection yet: a connection exception
 * (class 08), starting up or shutting down (57P03, 57P01), too many connections (53300).
 */
const TRANSIENT_SQLSTATE = /^(08...|57P01|57P03|53300)$/;

/**
 * Opens the database for the API and the gateway, which cannot serve without it: trying again
 * with full-jitter backoff while PostgreSQL cannot be reached or cannot take the connection
 * yet, for at most `windowMs`. A server that starts after its database (a host that boots
 * both), or a gateway worker restarted while PostgreSQL is briefly out of reach, then starts;
 * an answer that will not change (wrong password, no such database) fails the start at once,
 * and so does embedded PGlite, which has no server to wait for. (The price worker alone opens
 * it in the background instead, for as long as it runs: `background-database.ts`.)
 *
 * In a reconnect storm of 2026-11-29 a gateway worker's first connection ended before
 * PostgreSQL answered ("Connection terminated unexpectedly"), and that one failure stopped
 * the whole node's start.
 */
export async function openDatabaseAtStart(
  options: DatabaseOptions,
  logger: Logger,
  { windowMs, retry }: StartWindow = START_WINDOW,
): Promise<Database> {
  const deadline = Date.now() + windowMs;
  for (let attempt = 0; ; attempt++) {
    try {
      const db = await openDatabase(options);
      if (attempt > 0) logger.info({ attempts: attempt + 1 }, 'database open');
      return db;
    } catch (err) {
      const delayMs = backoffDelay(attempt, retry);
      if (!options.url || !unreachable(err) || Date.now() + delayMs > deadline) throw err;
      logger.warn(
        { err: (err as Error).message, attempt: attempt + 1, retryInMs: delayMs },
        'database not reachable; trying again',
      );
      await new Promise((resolve) => setTimeout(resolve, delayMs));
    }
  }
}

/** A failure to reach PostgreSQL (no answer, or one saying "not now"), not an answer that stands. */
function unreachable(err: unknown): boolean {
  if (!(err instanceof DatabaseError)) return false;
  return err.sqlState === undefined || TRANSIENT_SQLSTATE.test(err.sqlState);
}
