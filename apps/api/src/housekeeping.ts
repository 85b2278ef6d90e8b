import type { Database } from '@repo/db';
import { silentLogger, type Logger } from '@repo/log';
import { deleteUntilCaughtUp } from './batched-delete.ts';
import { IDEMPOTENCY_KEY_TTL_MS } from './routes/orders.ts';

export interface HousekeepingOptions {
  db: Pick<Database, 'sessions' | 'orders'>;
  logger?: Logger;
  /** How often it runs (default 10 min). */
  intervalMs?: number;
  /** Rows deleted per statement (default 1000); a run goes on until caught up. */
  batchSize?: number;
  now?: () => Date;
}

/**
 * Deletes what can never be used again, so the tables do not grow without bound: sessions
 * past their expiry, and idempotency keys past their 24 hours. Every API process runs it; the
 * deletes are idempotent, so several at once only share the work.
 */
export class Housekeeping {
  readonly #db: HousekeepingOptions['db'];
  readonly #logger: Logger;
  readonly #intervalMs: number;
  readonly #batchSize: number;
  readonly #now: () => Date;
  #timer: NodeJS.Timeout | undefined;
  /** The pass in progress: a run asked for meanwhile (the timer's, a test's) shares it. */
  #running: Promise<{ sessions: number; idempotencyKeys: number }> | undefined;
  #closed = false;

  constructor(options: HousekeepingOptions) {
    this.#db = options.db;
    this.#logger = options.logger ?? silentLogger;
    this.#intervalMs = options.intervalMs ?? 10 * 60 * 1000;
    this.#batchSize = options.batchSize ?? 1000;
    this.#now = options.now ?? (() => new Date());
    if (!Number.isFinite(this.#intervalMs) || this.#intervalMs <= 0) {
      throw new RangeError(`housekeeping intervalMs must be positive, got ${this.#intervalMs}`);
    }
    if (!Number.isInteger(this.#batchSize) || this.#batchSize < 1) {
      throw new RangeError(`housekeeping batchSize must be a positive integer, got ${this.#batchSize}`);
    }
  }

  start(): void {
    if (this.#timer || this.#closed) return;
    this.#timer = setInterval(() => void this.run(), this.#intervalMs);
    this.#timer.unref();
  }

  /**
   * One pass over every table. Never throws; returns what it deleted. While a pass runs (a
   * long one after a backlog outlasts the interval), asking again joins it.
   */
  run(): Promise<{ sessions: number; idempotencyKeys: number }> {
    this.#running ??= this.#pass().finally(() => {
      this.#running = undefined;
    });
    return this.#running;
  }

  async #pass(): Promise<{ sessions: number; idempotencyKeys: number }> {
    const result = { sessions: 0, idempotencyKeys: 0 };
    const now = this.#now();
    const stopped = () => this.#closed;
    try {
      result.sessions = await deleteUntilCaughtUp(
        (limit) => this.#db.sessions.deleteExpired(now, limit),
        this.#batchSize,
        stopped,
      );
      result.idempotencyKeys = await deleteUntilCaughtUp(
        (limit) => this.#db.orders.deleteIdempotencyKeys(new Date(now.getTime() - IDEMPOTENCY_KEY_TTL_MS), limit),
        this.#batchSize,
        stopped,
      );
      if (result.sessions + result.idempotencyKeys > 0) this.#logger.debug(result, 'housekeeping deleted rows');
    } catch (err) {
      this.#logger.warn({ err: (err as Error).message }, 'housekeeping failed');
    }
    return result;
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#timer);
    await this.#running;
  }
}
