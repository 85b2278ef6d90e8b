import { SlotQueue, TimeoutError, withTimeout, type SlotRequest } from '@repo/retry';
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
  /**
   * History reads that may wait for a slot; a subscription's first read past them fails at once
   * (`HistoryBusyError`), a running stream's read waits all the same. Default 1000.
   */
  maxWaitingReads: number;
  /** A read (queue time included) that takes longer fails. Default 5 s. */
  timeoutMs: number;
}

export function defaultHistoryReadLimits(): HistoryReadLimits {
  return { pageEvents: 200, pageBytes: 256 * 1024, concurrentReads: 8, maxWaitingReads: 1000, timeoutMs: 5000 };
}

/** A refusable history read turned down at once: `maxWaitingReads` reads already wait for a slot. */
export class HistoryBusyError extends Error {
  readonly code = 'history_busy';
  constructor(waiting: number) {
    super(`${waiting} history reads already wait for a slot`);
    this.name = 'HistoryBusyError';
  }
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

/** A query that callers share while it waits for a slot and runs. */
interface SharedRead {
  readonly page: Promise<OrderHistoryPage>;
  /** Its place in line: each caller that joins keeps it there until its own deadline. */
  readonly slot: SlotRequest;
}

/**
 * The gateway's door to the history. A reconnect storm (a node died, thousands of its clients
 * come back with `since`) must not become thousands of queries:
 * - identical reads in flight (same user, same `afterSeq`) share one query: a user with
 *   several tabs, or a live gap seen by every socket of the user, costs one query. Only until
 *   an order event of the user goes out live (`liveEvent`): the read's snapshot may predate that
 *   event, and a stream that starts holding live events only now would get it from neither;
 * - at most `concurrentReads` queries run at once; the rest queue (FIFO) behind them. Past
 *   `maxWaitingReads` in line, a refusable read (a subscription's first) fails at once with
 *   `HistoryBusyError`, so its client backs off instead of waiting out a timeout it would
 *   most likely hit; a running stream's read (a gap, a replay page, a recovery) still queues;
 * - every read is bounded by `pageEvents` and `pageBytes`, and fails after `timeoutMs`. A
 *   queued query whose callers have all given up leaves the line unrun: in a storm the line
 *   outgrows the timeout, and queries run for callers long gone would starve those still
 *   waiting. A query that already runs is shared until it ends, so a caller that retries
 *   after a timeout joins it instead of queueing a second one.
 */
export class HistoryReader {
  readonly #history: OrderHistory;
  readonly #limits: HistoryReadLimits;
  /** Queries that a new reader may share, by user and `afterSeq`. */
  readonly #inFlight = new Map<number, Map<number, SharedRead>>();
  readonly #slots: SlotQueue;
  /** Queries actually sent to the history (for tests and metrics). */
  queries = 0;

  constructor(history: OrderHistory, limits: HistoryReadLimits) {
    this.#history = history;
    this.#limits = limits;
    this.#slots = new SlotQueue({ concurrency: limits.concurrentReads, maxWaiting: limits.maxWaitingReads });
  }

  get limits(): HistoryReadLimits {
    return this.#limits;
  }

  /**
   * The user's order events after `afterSeq` (one bounded page). `refusable`: the read may be
   * turned down when the line is full (default false).
   */
  read(
    userId: number,
    afterSeq: number,
    { refusable = false }: { refusable?: boolean } = {},
  ): Promise<OrderHistoryPage> {
    const { timeoutMs } = this.#limits;
    const deadline = Date.now() + timeoutMs;
    let shared = this.#inFlight.get(userId)?.get(afterSeq);
    if (shared) {
      shared.slot.extend(deadline);
    } else {
      const slot = this.#slots.acquire(deadline, { refusable });
      if (!slot) return Promise.reject(new HistoryBusyError(this.#slots.waiting));
      shared = this.#share(userId, afterSeq, { slot, page: this.#query(userId, afterSeq, slot) });
    }
    return withTimeout(shared.page, timeoutMs, 'history read');
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

  /** Offers `read` to later callers until its query settles. */
  #share(userId: number, afterSeq: number, read: SharedRead): SharedRead {
    let byPosition = this.#inFlight.get(userId);
    if (!byPosition) {
      byPosition = new Map();
      this.#inFlight.set(userId, byPosition);
    }
    byPosition.set(afterSeq, read);
    const forget = (): void => {
      const current = this.#inFlight.get(userId);
      if (current?.get(afterSeq) !== read) return;
      current.delete(afterSeq);
      if (current.size === 0) this.#inFlight.delete(userId);
    };
    read.page.then(forget, forget);
    return read;
  }

  async #query(userId: number, afterSeq: number, slot: SlotRequest): Promise<OrderHistoryPage> {
    if (!(await slot.granted)) {
      throw new TimeoutError(`history read waited longer than ${this.#limits.timeoutMs} ms for a slot`);
    }
    try {
      this.queries += 1;
      return await this.#history.read(userId, afterSeq, this.#limits.pageEvents, this.#limits.pageBytes);
    } finally {
      this.#slots.release();
    }
  }
}
