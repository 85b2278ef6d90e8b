/**
 * The candles the chart draws for one market at one interval: history from `GET /candles`,
 * extended by live ticks. Prices stay decimal strings here; only the chart turns them into
 * numbers, for pixels.
 */
import type { Candle } from './api.ts';
import { compareDecimal } from './money.ts';

export const CHART_INTERVALS = [
  { id: '1s', ms: 1000, name: '1 second' },
  { id: '1m', ms: 60_000, name: '1 minute' },
  { id: '1h', ms: 3_600_000, name: '1 hour' },
] as const;
export type ChartInterval = (typeof CHART_INTERVALS)[number];
export type ChartIntervalId = ChartInterval['id'];

export const chartInterval = (id: string | null | undefined): ChartInterval | undefined =>
  CHART_INTERVALS.find((i) => i.id === id);

/** One price as it arrived: the decimal string and its time in ms. */
export interface Tick {
  price: string;
  timeMs: number;
}

/** Candles kept in memory per series; the chart scrolls, and older ones are a reload away. */
const MAX_SERIES_CANDLES = 2000;

/**
 * `reset`: draw everything again (history arrived, or old candles were dropped); `update`: the
 * last candle changed or a new one opened.
 */
export type SeriesChange = { kind: 'reset' } | { kind: 'update'; candle: Candle };

export class CandleSeries {
  readonly symbol: string;
  readonly interval: ChartInterval;
  #candles: Candle[] = [];
  #loaded = false;
  #listeners = new Set<(change: SeriesChange) => void>();

  constructor(symbol: string, interval: ChartInterval) {
    this.symbol = symbol;
    this.interval = interval;
  }

  /** True once history from the server has been merged in. */
  get loaded(): boolean {
    return this.#loaded;
  }

  /** The candles, oldest first (a copy). */
  candles(): Candle[] {
    return this.#candles.slice();
  }

  /**
   * Takes `history` (oldest first) as the truth from its first candle on, keeps older candles
   * already shown, then replays `recent` ticks from the history's last candle on: the ticks
   * the server had not written yet, and those that arrived while the history was on its way.
   * Replaying a tick the history already holds changes nothing but the close, which ends at
   * the latest tick.
   */
  setHistory(history: readonly Candle[], recent: readonly Tick[]): void {
    const first = history[0];
    const kept = first ? this.#candles.filter((c) => c.t < first.t) : this.#candles;
    this.#candles = [...kept, ...history.map((c) => ({ ...c }))];
    const from = this.#candles.at(-1)?.t ?? Number.NEGATIVE_INFINITY;
    for (const tick of recent) if (this.#openTime(tick.timeMs) >= from) this.#apply(tick);
    this.#trim(MAX_SERIES_CANDLES);
    this.#loaded = true;
    this.#emit({ kind: 'reset' });
  }

  /** Extends the chart with a live tick: a tick older than the last candle is left out. */
  addTick(tick: Tick): void {
    const candle = this.#apply(tick);
    if (!candle) return;
    if (this.#candles.length > MAX_SERIES_CANDLES * 1.2) {
      // Trimming in batches keeps the chart's full redraw rare.
      this.#trim(MAX_SERIES_CANDLES);
      this.#emit({ kind: 'reset' });
    } else {
      this.#emit({ kind: 'update', candle: { ...candle } });
    }
  }

  /** Called with every change; returns the unsubscribe. */
  onChange(listener: (change: SeriesChange) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  #openTime(timeMs: number): number {
    return Math.floor(timeMs / this.interval.ms) * this.interval.ms;
  }

  #apply(tick: Tick): Candle | null {
    const t = this.#openTime(tick.timeMs);
    const last = this.#candles.at(-1);
    if (last && t === last.t) {
      if (compareDecimal(tick.price, last.h) > 0) last.h = tick.price;
      if (compareDecimal(tick.price, last.l) < 0) last.l = tick.price;
      last.c = tick.price;
      return last;
    }
    if (last && t < last.t) return null;
    const opened = { t, o: tick.price, h: tick.price, l: tick.price, c: tick.price };
    this.#candles.push(opened);
    return opened;
  }

  #trim(max: number): void {
    if (this.#candles.length > max) this.#candles = this.#candles.slice(-max);
  }

  #emit(change: SeriesChange): void {
    for (const listener of this.#listeners) listener(change);
  }
}
