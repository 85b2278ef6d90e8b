import { withTimeout } from '@repo/retry';
import { checkLimit, InvalidLimitError } from '../limits.ts';
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
 * The defaults with `overrides` applied, each checked as the gateway's other limits are: with
 * `concurrentReads: 0` every read would wait forever, and a `timeoutMs` no timer can hold would
 * fail every read at once.
 */
export function resolveHistoryReadLimits(overrides: Partial<HistoryReadLimits> = {}): HistoryReadLimits {
  const limits = defaultHistoryReadLimits();
  for (const [key, value] of Object.entries(overrides) as [keyof HistoryReadLimits, unknown][]) {
    if (value === undefined) continue;
    if (!(key in limits)) throw new InvalidLimitError(`unknown history limit "${key}"`);
    limits[key] = checkLimit(key, value);
  }
  return limits;
}

/**
 * The gateway's door to the history. A reconnect storm (a node died, thousands of its clients
 * come back with `since`) must not become thousands of queries:
 * - identical reads in flight (same user, same `afterSeq`) share one promise: a user with
 *   several tabs, or a live gap seen by every socket of the user, costs one query. Only until
 *   an order event of the user goes out live (`liveEvent`): the read's snapshot may predate that
 *   event, and a stream that starts holding live events only now would get it from neither;
 * - at most `concurrentReads` queries run at once; the rest queue (FIFO) behind them;
 * - every read is bounded by `pageEvents` and `pageBytes`, and fails after `timeoutMs`.
 */
export class HistoryReader {
  readonly #history: OrderHistory;
  readonly #limits: HistoryReadLimits;
  /** Reads that a new reader may share, by user and `afterSeq`. */
  readonly #inFlight = new Map<number, Map<number, Promise<OrderHistoryPage>>>();
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
    let byPosition = this.#inFlight.get(userId);
    const shared = byPosition?.get(afterSeq);
    if (shared) return shared;
    const pending: Promise<OrderHistoryPage> = withTimeout(
      this.#query(userId, afterSeq),
      this.#limits.timeoutMs,
      'history read',
    ).finally(() => {
      const current = this.#inFlight.get(userId);
      if (current?.get(afterSeq) !== pending) return;
      current.delete(afterSeq);
      if (current.size === 0) this.#inFlight.delete(userId);
    });
    if (!byPosition) {
      byPosition = new Map();
      this.#inFlight.set(userId, byPosition);
    }
    byPosition.set(afterSeq, pending);
    return pending;
  }

  /**
   * An order event of `userId` reached this gateway's streams. A read already in flight may have
   * taken its snapshot before the event was committed, while a stream that asks from now on
   * holds live events only from now on: it must not share that read. Those already waiting for
   * it held the event, and keep their read.
   */
  liveEvent(userId: number): void {
    this.#inFlight.delete(userId);
  }

  /**
   * The broker is back after an outage: a read in flight may have taken its snapshot before
   * events this gateway never heard were committed, so reads asked for from now on (the
   * recovery's) start queries of their own.
   */
  resumed(): void {
    this.#inFlight.clear();
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
