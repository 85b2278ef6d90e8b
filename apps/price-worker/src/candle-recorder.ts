import {
  CANDLE_INTERVALS,
  CANDLE_WRITER_LOCK_KEY,
  createCandlesRepository,
  latestCandleRows,
  type CandleInterval,
  type CandleRow,
  type Database,
  type SingleWriter,
} from '@repo/db';
import { silentLogger, type Logger } from '@repo/log';
import { withTimeout } from '@repo/retry';
import { CandleAggregator, type CandleAggregatorStats } from './candle-aggregator.ts';

/** How long candles of each interval are kept, in ms; null keeps them forever. */
export type CandleRetention = Readonly<Record<CandleInterval, number | null>>;

/** 1 s candles for 6 hours, 1 m candles for 30 days, 1 h candles forever. */
export const DEFAULT_CANDLE_RETENTION: CandleRetention = Object.freeze({
  '1s': 6 * 3_600_000,
  '1m': 30 * 86_400_000,
  '1h': null,
});

export interface CandleRecorderOptions {
  /**
   * The database the candles go to; the recorder opens its single writer (`openSingleWriter`).
   * May be a promise of it (a database still being opened): ticks are aggregated meanwhile and
   * written once it is there.
   */
  db: Pick<Database, 'openSingleWriter'> | Promise<Pick<Database, 'openSingleWriter'>>;
  /** Retention per interval (default `DEFAULT_CANDLE_RETENTION`). */
  retention?: Partial<CandleRetention>;
  /** Time between flushes of the changed candles (default 1000 ms). */
  flushIntervalMs?: number;
  /** Time between retention passes (default 60000 ms). */
  pruneIntervalMs?: number;
  /** Rows deleted per statement by a retention pass, repeated until caught up (default 5000). */
  pruneBatchSize?: number;
  /** Closed candles kept while the database cannot take them (default 100000). */
  maxPending?: number;
  /** The advisory lock that makes one writer per database (default `CANDLE_WRITER_LOCK_KEY`). */
  lockKey?: number;
  logger?: Logger;
  now?: () => number;
}

export interface FlushResult {
  /** True when this process holds the writer lock. */
  writer: boolean;
  /** Candle rows written (0 when standing by or when the write failed). */
  written: number;
  /** The write failed; the rows go out with the next flush. */
  failed: boolean;
}

export interface CandleRecorderStats extends CandleAggregatorStats {
  writer: boolean;
  flushes: number;
  written: number;
  failedFlushes: number;
  /** Candle rows left to another writer's care: drained while standing by, kept a minute, then dropped. */
  discarded: number;
  pruned: number;
}

export interface CandleRecorder {
  /** Adds a published price to the open candles: in memory, never waits, never throws. */
  record(event: { symbol: string; price: string; timestamp: string }): void;
  /** Flushes every `flushIntervalMs` and prunes every `pruneIntervalMs`. */
  start(): void;
  /** One flush now: becomes the writer if it can, then writes what changed. Never rejects. */
  flush(): Promise<FlushResult>;
  /**
   * What the timer runs every `flushIntervalMs`: a flush, then the retention work that is due
   * (at most 10 delete statements; a longer backlog goes on at the next step). Never rejects.
   */
  step(): Promise<void>;
  /** One retention pass now (when the writer), until caught up; returns the rows deleted. Never rejects. */
  prune(): Promise<number>;
  /** Stops the timers, flushes a last time and gives the writer lock up. */
  close(): Promise<void>;
  stats(): CandleRecorderStats;
}

const MIN_FLUSH_INTERVAL_MS = 10;
/**
 * Delete statements of a retention pass between two flushes: a backlog of millions of rows
 * (a retention just shortened) is worked off over several flush intervals while the flushes
 * go on, not in one pass that holds them up.
 */
const PRUNE_BATCHES_PER_FLUSH = 10;
/** The last flush on close may not hold a shutdown up for long: the launcher exits within 5 s. */
const FINAL_FLUSH_TIMEOUT_MS = 2000;
/**
 * How long a standby keeps the candles it drained (at least three flushes): a writer whose host
 * vanished wrote none of them, and its lock outlives it until the server's TCP keepalive gives
 * up (about 25 s with the writer session's settings, `single-writer.ts`).
 */
const STANDBY_KEEP_MS = 60_000;

/**
 * Candles of every published price, written by one process per database. Each process that
 * runs it aggregates its ticks in memory (`CandleAggregator`); every `flushIntervalMs` the
 * holder of the writer lock upserts the candles that changed (open ones included, so the
 * database is at most one flush behind). A process that cannot get the lock stands by: it
 * keeps its open candles and, for a minute, the rows it drained (closed candles included), and
 * when it takes over it writes those too: a writer that vanished left them unwritten, and
 * the upsert merges them with what it did write. It takes over when
 * the writer's connection goes away. Retention deletes old candles in bounded batches.
 */
export function createCandleRecorder(options: CandleRecorderOptions): CandleRecorder {
  const logger = options.logger ?? silentLogger;
  const now = options.now ?? Date.now;
  const flushIntervalMs = options.flushIntervalMs ?? 1000;
  if (!Number.isInteger(flushIntervalMs) || flushIntervalMs < MIN_FLUSH_INTERVAL_MS) {
    throw new RangeError(`candle recorder: flushIntervalMs must be an integer of at least ${MIN_FLUSH_INTERVAL_MS}`);
  }
  const pruneIntervalMs = options.pruneIntervalMs ?? 60_000;
  const pruneBatchSize = options.pruneBatchSize ?? 5000;
  for (const [name, value] of [
    ['pruneIntervalMs', pruneIntervalMs],
    ['pruneBatchSize', pruneBatchSize],
  ] as const) {
    if (!Number.isInteger(value) || value < 1) {
      throw new RangeError(`candle recorder: ${name} must be a positive integer, got ${String(value)}`);
    }
  }
  const retention: CandleRetention = { ...DEFAULT_CANDLE_RETENTION, ...options.retention };
  for (const interval of CANDLE_INTERVALS) {
    const ms = retention[interval];
    if (ms !== null && (!Number.isSafeInteger(ms) || ms < 1)) {
      throw new RangeError(`candle recorder: retention of ${interval} must be a positive integer of ms or null`);
    }
  }

  const aggregator = new CandleAggregator({ maxPending: options.maxPending });
  const lockKey = options.lockKey ?? CANDLE_WRITER_LOCK_KEY;
  let database: Pick<Database, 'openSingleWriter'> | null = null;
  if (options.db instanceof Promise) {
    options.db.then(
      (db) => (database = db),
      () => {},
    );
  } else {
    database = options.db;
  }
  let writer: SingleWriter | null = null;
  const counts = { flushes: 0, written: 0, failedFlushes: 0, discarded: 0, pruned: 0 };
  const standbyKeepMs = Math.max(STANDBY_KEEP_MS, 3 * flushIntervalMs);
  /** Rows drained while standing by, oldest first, dropped after `standbyKeepMs`. */
  let kept: { at: number; rows: CandleRow[] }[] = [];
  let timer: NodeJS.Timeout | undefined;
  let running = false;
  // Set as close() begins: a retention pass stops so the last flush is not held up behind it.
  let closing = false;
  let closed = false;
  let lastPruneAt = Number.NEGATIVE_INFINITY;
  // A pass that stopped at PRUNE_BATCHES_PER_FLUSH goes on after the next flush.
  let pruneBacklog = true;
  // Flushes and prunes run one after another on this chain, whoever asks for them.
  let chain: Promise<unknown> = Promise.resolve();
  let failingSince: number | null = null;
  let wasWriter: boolean | null = null;

  function serial<T>(work: () => Promise<T>): Promise<T> {
    const result = chain.then(work);
    chain = result.catch(() => undefined);
    return result;
  }

  /** Keeps `rows` for the next flush; one warning per outage. */
  function keepForLater(rows: CandleRow[], err: unknown): FlushResult {
    counts.failedFlushes++;
    aggregator.requeue(rows);
    if (failingSince === null) {
      failingSince = now();
      logger.warn({ err: (err as Error).message, rows: rows.length }, 'candles not written, kept for the next flush');
    }
    return { writer: writer?.isWriter ?? false, written: 0, failed: true };
  }

  /** Keeps `rows` in case this process takes over soon; older ones are the writer's care. */
  function keepWhileStandingBy(rows: CandleRow[]): void {
    const at = now();
    if (rows.length > 0) kept.push({ at, rows });
    while (kept.length > 0 && at - kept[0]!.at > standbyKeepMs) counts.discarded += kept.shift()!.rows.length;
  }

  async function runFlush(): Promise<FlushResult> {
    counts.flushes++;
    if (!writer && database) writer = database.openSingleWriter(lockKey);
    if (!writer) return keepForLater(aggregator.drain(), new Error('the database is not open yet'));
    let isWriter: boolean;
    try {
      isWriter = await writer.tryAcquire();
    } catch (err) {
      // The database cannot be reached: nobody is known to write, so nothing is dropped.
      return keepForLater(aggregator.drain(), err);
    }
    if (isWriter !== wasWriter) {
      if (isWriter) logger.info('this process writes the candles');
      else logger.info('another process writes the candles; standing by');
      wasWriter = isWriter;
    }
    const drained = aggregator.drain();
    if (!isWriter) {
      keepWhileStandingBy(drained);
      return { writer: false, written: 0, failed: false };
    }
    const rows = kept.length > 0 ? latestCandleRows([...kept.flatMap((k) => k.rows), ...drained]) : drained;
    kept = [];
    if (rows.length === 0) return { writer: true, written: 0, failed: false };
    try {
      await writer.run((db) => createCandlesRepository(db).upsert(rows));
      counts.written += rows.length;
      if (failingSince !== null) logger.info({ failedForMs: now() - failingSince }, 'candles written again');
      failingSince = null;
      return { writer: true, written: rows.length, failed: false };
    } catch (err) {
      // The rows wait in memory (bounded) for the next flush.
      return keepForLater(rows, err);
    }
  }

  /**
   * Deletes the candles past their retention, `pruneBatchSize` rows a statement and at most
   * `maxBatches` statements; returns how many rows went and whether none is left.
   */
  async function runPrune(maxBatches: number): Promise<{ deleted: number; caughtUp: boolean }> {
    const pruner = writer;
    if (!pruner?.isWriter) return { deleted: 0, caughtUp: true };
    let deleted = 0;
    let batches = 0;
    let caughtUp = true;
    try {
      for (const interval of CANDLE_INTERVALS) {
        const keepMs = retention[interval];
        if (keepMs === null) continue;
        const before = now() - keepMs;
        for (;;) {
          if (batches === maxBatches || closing) {
            caughtUp = false;
            break;
          }
          batches++;
          const batch = await pruner.run((db) => createCandlesRepository(db).prune(interval, before, pruneBatchSize));
          deleted += batch;
          if (batch < pruneBatchSize) break;
          // The rest of the process gets its turn between statements.
          await new Promise<void>((resolve) => setImmediate(resolve));
        }
      }
    } catch (err) {
      logger.warn({ err: (err as Error).message }, 'candle retention pass failed; tried again later');
    }
    counts.pruned += deleted;
    if (deleted > 0) logger.debug({ deleted, caughtUp }, 'old candles deleted');
    return { deleted, caughtUp };
  }

  async function flushAndPrune(): Promise<void> {
    await runFlush();
    if (!pruneBacklog && now() - lastPruneAt < pruneIntervalMs) return;
    const { caughtUp } = await runPrune(PRUNE_BATCHES_PER_FLUSH);
    pruneBacklog = !caughtUp;
    if (caughtUp) lastPruneAt = now();
  }

  function schedule(): void {
    timer = setTimeout(() => {
      void serial(flushAndPrune).finally(() => {
        if (running) schedule();
      });
    }, flushIntervalMs);
    timer.unref();
  }

  return {
    record(event) {
      const timeMs = Date.parse(event.timestamp);
      if (!Number.isFinite(timeMs)) return;
      aggregator.add(event.symbol, event.price, timeMs);
    },
    start() {
      if (running || closed) return;
      running = true;
      schedule();
    },
    flush: () => serial(runFlush),
    step: () => serial(flushAndPrune),
    prune: () => serial(async () => (await runPrune(Number.POSITIVE_INFINITY)).deleted),
    async close() {
      if (closed || closing) return;
      closing = true;
      running = false;
      clearTimeout(timer);
      try {
        await withTimeout(serial(runFlush), FINAL_FLUSH_TIMEOUT_MS, 'last candle flush');
      } catch (err) {
        logger.warn({ err: (err as Error).message }, 'last candle flush did not finish; open candles not written');
      }
      closed = true;
      await writer?.close();
    },
    stats() {
      return { ...aggregator.stats(), ...counts, writer: writer?.isWriter ?? false };
    },
  };
}
