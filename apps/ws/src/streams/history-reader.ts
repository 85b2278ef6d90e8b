import { withTimeout } from '@repo/retry';
import type { OrderHistory, OrderHistoryPage } from './order-history.ts';

/** Bounds of the gateway's history reads, with their defaults (docs/delivery.md). */
export interface HistoryReadLimits {
  /** Events per read. Default 200. */
  pageEvents: number;
  /** Bytes of event JSON per read (past the first event). Default 256 KiB. */
  pageBytes: number;
  /** History reads in flight at once per gateway process; more wait their turn. Default 8. */
  concurrentReads: number;
  /** A read (queue time included) that takes longer fails. Default 5 s. */
  timeoutMs: number;
}

export function defaultHistoryReadLimits(): HistoryReadLimits {
  return { pageEvents: 200, pageBytes: 256 * 1024, concurrentReads: 8, timeoutMs: 5000 };
}

/**
 * The gateway's door to the history. A reconnect storm (a node died, thousands of its clients
 * come back with `since`) must not become thousands of queries:
 * - identical reads in flight (same user, same `afterSeq`) share one promise: a user with
 *   several tabs, or a live gap seen by every socket of the user, costs one query;
 * - at most `concurrentReads` queries run at once; the rest queue (FIFO) behind them;
 * - every read is bounded by `pageEvents` and `pageBytes`, and fails after `timeoutMs`.
 */
export class HistoryReader {
  readonly #history: OrderHistory;
  readonly #limits: HistoryReadLimits;
  readonly #inFlight = new Map<string, Promise<OrderHistoryPage>>();
  readonly #waiting: (() => void)[] = [];
  #running = 0;
  /** Queries actually sent to the history (for tests and metrics). */
  queries = 0;

  constructor(history: OrderHistory, limits: HistoryReadLimits) {
    this.#history = history;
    this.#limits = limits;
  }

  get limits(): HistoryReadLimits {
    return this.#limits;
  }

  /** The user's order events after `afterSeq` (one bounded page). */
  read(userId: number, afterSeq: number): Promise<OrderHistoryPage> {
    const key = `${userId}:${afterSeq}`;
    let pending = this.#inFlight.get(key);
    if (!pending) {
      pending = withTimeout(this.#query(userId, afterSeq), this.#limits.timeoutMs, 'history read').finally(() => {
        this.#inFlight.delete(key);
      });
      this.#inFlight.set(key, pending);
    }
    return pending;
  }

  async #query(userId: number, afterSeq: number): Promise<OrderHistoryPage> {
    if (this.#running >= this.#limits.concurrentReads) {
      await new Promise<void>((resolve) => this.#waiting.push(resolve));
    }
    this.#running += 1;
    try {
      this.queries += 1;
      return await this.#history.read(userId, afterSeq, this.#limits.pageEvents, this.#limits.pageBytes);
    } finally {
      this.#running -= 1;
      this.#waiting.shift()?.();
    }
  }
}
