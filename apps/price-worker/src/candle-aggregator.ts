import { CANDLE_INTERVALS, CANDLE_INTERVAL_MS, type CandleInterval, type CandleRow } from '@repo/db';
import { compareDecimal } from './decimal-order.ts';

export interface CandleAggregatorOptions {
  /** Intervals to aggregate (default every one of `CANDLE_INTERVALS`: 1s, 1m, 1h). */
  intervals?: readonly CandleInterval[];
  /**
   * Closed candles kept while they cannot be written (default 100000, a day of 1 s candles of
   * one symbol); past it the oldest are dropped and counted.
   */
  maxPending?: number;
}

export interface CandleAggregatorStats {
  ticks: number;
  /** Ticks older than their symbol's open candle of an interval (that candle was already closed). */
  outOfOrder: number;
  /** Closed candles dropped because `maxPending` were waiting. */
  droppedCandles: number;
}

interface OpenCandle extends CandleRow {
  /** Changed since it was last handed out by `drain`. */
  dirty: boolean;
}

/**
 * Folds price ticks into OHLC candles per symbol and interval, in memory. A tick costs a few
 * string comparisons per interval and allocates only when it opens a candle; the candles are
 * written elsewhere, in batches (`drain` hands out what changed since the last call).
 *
 * A candle opens at the multiple of its interval at or before the tick's time (UTC). Ticks of a
 * symbol are expected in time order (the price worker never publishes one older than the last):
 * a tick older than the symbol's open candle is counted and left out of that interval.
 */
export class CandleAggregator {
  readonly intervals: readonly CandleInterval[];
  readonly #lengths: readonly number[];
  readonly #maxPending: number;
  readonly #open = new Map<string, (OpenCandle | null)[]>();
  #closed: CandleRow[] = [];
  readonly #stats: CandleAggregatorStats = { ticks: 0, outOfOrder: 0, droppedCandles: 0 };

  constructor(options: CandleAggregatorOptions = {}) {
    const intervals = options.intervals ?? CANDLE_INTERVALS;
    for (const interval of intervals) {
      if (!(CANDLE_INTERVALS as readonly string[]).includes(interval)) {
        throw new RangeError(`candle aggregator: unknown interval ${JSON.stringify(interval)}`);
      }
    }
    const maxPending = options.maxPending ?? 100_000;
    if (!Number.isInteger(maxPending) || maxPending < 1) {
      throw new RangeError(`candle aggregator: maxPending must be a positive integer, got ${String(maxPending)}`);
    }
    this.intervals = [...new Set(intervals)];
    this.#lengths = this.intervals.map((interval) => CANDLE_INTERVAL_MS[interval]);
    this.#maxPending = maxPending;
  }

  /** Adds one tick: `price` a positive decimal string, `timeMs` its time in ms since the epoch. */
  add(symbol: string, price: string, timeMs: number): void {
    this.#stats.ticks++;
    let open = this.#open.get(symbol);
    if (!open) {
      open = this.intervals.map(() => null);
      this.#open.set(symbol, open);
    }
    for (let i = 0; i < open.length; i++) {
      const length = this.#lengths[i]!;
      const t = Math.floor(timeMs / length) * length;
      const candle = open[i]!;
      if (candle !== null && t === candle.t) {
        if (compareDecimal(price, candle.h) > 0) candle.h = price;
        if (compareDecimal(price, candle.l) < 0) candle.l = price;
        candle.c = price;
        candle.dirty = true;
      } else if (candle === null || t > candle.t) {
        // Its last state is already written unless it changed since the last drain.
        if (candle?.dirty) this.#keepClosed(snapshot(candle));
        open[i] = { symbol, interval: this.intervals[i]!, t, o: price, h: price, l: price, c: price, dirty: true };
      } else {
        this.#stats.outOfOrder++;
      }
    }
  }

  /** Every candle that changed since the last call (closed ones, then the open ones), oldest first per series. */
  drain(): CandleRow[] {
    const rows = this.#closed;
    this.#closed = [];
    for (const open of this.#open.values()) {
      for (const candle of open) {
        if (candle?.dirty) {
          rows.push(snapshot(candle));
          candle.dirty = false;
        }
      }
    }
    return rows;
  }

  /**
   * Gives back rows from `drain` that could not be written, to go out with the next drain. A
   * row of a candle that is still open only marks it changed: the open candle is that row or
   * newer.
   */
  requeue(rows: readonly CandleRow[]): void {
    const back: CandleRow[] = [];
    for (const row of rows) {
      const index = this.intervals.indexOf(row.interval);
      const open = this.#open.get(row.symbol)?.[index];
      if (open && open.t === row.t) open.dirty = true;
      else back.push(row);
    }
    this.#closed = [...back, ...this.#closed];
    this.#trim();
  }

  /** The open candles (copies), for tests and diagnostics. */
  openCandles(): CandleRow[] {
    return [...this.#open.values()].flatMap((open) => open.filter((c) => c !== null).map(snapshot));
  }

  stats(): CandleAggregatorStats {
    return { ...this.#stats };
  }

  #keepClosed(row: CandleRow): void {
    this.#closed.push(row);
    this.#trim();
  }

  #trim(): void {
    const excess = this.#closed.length - this.#maxPending;
    if (excess > 0) {
      this.#closed.splice(0, excess);
      this.#stats.droppedCandles += excess;
    }
  }
}

function snapshot(candle: CandleRow): CandleRow {
  const { symbol, interval, t, o, h, l, c } = candle;
  return { symbol, interval, t, o, h, l, c };
}
