import { openDatabase, type Database, type DatabaseOptions } from '@repo/db';
import type { Logger } from '@repo/log';
import { backoffDelay, type BackoffOptions } from '@repo/retry';

export interface BackgroundDatabase {
  /** Resolves once the database is open and migrated; rejects only if closed before that. */
  readonly ready: Promise<Database>;
  /** Stops trying, and closes the database if it is open. Never waits for an attempt in flight. */
  close(): Promise<void>;
}

/**
 * Opens the database without holding its caller up, trying again with full-jitter backoff
 * (below 1 s, doubling, at most 30 s) until it answers. The price worker's role opens its
 * database this way: prices keep flowing while PostgreSQL is down or not yet there, and the
 * candles are written once it is.
 */
export function openDatabaseInBackground(
  options: DatabaseOptions,
  logger: Logger,
  retry: BackoffOptions = { baseDelayMs: 1000, maxDelayMs: 30_000 },
): BackgroundDatabase {
  let stopped = false;
  let opened: Database | null = null;
  let timer: NodeJS.Timeout | undefined;
  let wake: (() => void) | undefined;

  const ready = (async () => {
    for (let attempt = 0; ; attempt++) {
      try {
        const db = await openDatabase(options);
        if (stopped) {
          await db.close();
          break;
        }
        if (attempt > 0) logger.info({ attempts: attempt + 1 }, 'database open');
        opened = db;
        return db;
      } catch (err) {
        if (stopped) break;
        const line = { err: (err as Error).message, attempt: attempt + 1 };
        if (attempt === 0) logger.warn(line, 'database not reachable; trying again in the background');
        else logger.debug(line, 'database still not reachable');
        await new Promise<void>((resolve) => {
          wake = resolve;
          timer = setTimeout(resolve, backoffDelay(attempt, retry));
        });
        if (stopped) break;
      }
    }
    throw new Error('closed before the database could be opened');
  })();
  // A caller that never asks is no reason for an unhandled rejection.
  ready.catch(() => {});

  return {
    ready,
    async close() {
      stopped = true;
      clearTimeout(timer);
      wake?.();
      await opened?.close();
    },
  };
}
