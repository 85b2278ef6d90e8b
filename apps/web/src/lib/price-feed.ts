/**
 * The live price of one symbol: latest tick, the first price seen since the page opened
 * (the "change since open" reference) and a bounded history for the chart. Ticks arrive from
 * the REST snapshot and the WebSocket, sometimes twice (a snapshot after a resubscribe): only
 * a tick newer than the last one is kept, so the chart's time axis always moves forward.
 */
import type { Price } from './api.ts';

/** Points kept for the chart: about 80 minutes at one tick per second. */
export const MAX_CHART_POINTS = 5000;

export interface ChartPoint {
  /** Seconds since the epoch, fractional: ticks can be closer than a second apart. */
  time: number;
  value: number;
}

export interface PriceSnapshot {
  latest: Price | null;
  /** The first price seen since the page opened. */
  opening: string | null;
  /** The tick before the latest one, for the up/down colour. */
  previous: string | null;
  /** How many ticks were accepted; changes on every accepted tick. */
  ticks: number;
  /**
   * The latest price is too old to trade at: the server said so (`GET /prices`), or no newer
   * price arrived within the server's `maxPriceAgeMs` of receiving it. Judged by this page's
   * clock on arrival times only, so a wrong clock on the device cannot make prices look stale.
   */
  stale: boolean;
}

export type PointListener = (point: ChartPoint, reset: boolean) => void;

export class PriceFeed {
  readonly symbol: string;
  #snapshot: PriceSnapshot = { latest: null, opening: null, previous: null, ticks: 0, stale: false };
  #maxAgeMs: number | null = null;
  #staleTimer: ReturnType<typeof setTimeout> | undefined;
  #points: ChartPoint[] = [];
  #lastTime = -Infinity;
  #listeners = new Set<() => void>();
  #pointListeners = new Set<PointListener>();

  constructor(symbol: string) {
    this.symbol = symbol;
  }

  /** Adds a tick; returns false when it is for another symbol, malformed, or not newer than the last. */
  push(price: Price): boolean {
    if (price.symbol !== this.symbol) return false;
    const ms = Date.parse(price.timestamp);
    if (!Number.isFinite(ms)) return false;
    const time = ms / 1000;
    if (time <= this.#lastTime) return false;
    this.#lastTime = time;

    // Number only for the chart's y-axis (pixels); every figure shown as text uses the string.
    const point = { time, value: Number(price.price) };
    this.#points.push(point);
    let reset = false;
    if (this.#points.length > MAX_CHART_POINTS * 1.2) {
      // Trimming in batches keeps the chart's full redraw (setData) rare.
      this.#points = this.#points.slice(-MAX_CHART_POINTS);
      reset = true;
    }
    const prev = this.#snapshot;
    this.#snapshot = {
      latest: price,
      opening: prev.opening ?? price.price,
      previous: prev.latest?.price ?? null,
      ticks: prev.ticks + 1,
      stale: price.stale === true,
    };
    this.#armStaleTimer();
    for (const listener of this.#pointListeners) listener(point, reset);
    for (const listener of this.#listeners) listener();
    return true;
  }

  /** The server's `maxPriceAgeMs`: a price with no successor within it is shown stale. */
  setMaxAge(ms: number | null): void {
    this.#maxAgeMs = ms;
    this.#armStaleTimer();
  }

  /** Stops the staleness timer (the page is going away). */
  dispose(): void {
    clearTimeout(this.#staleTimer);
  }

  #armStaleTimer(): void {
    clearTimeout(this.#staleTimer);
    if (this.#maxAgeMs === null || !this.#snapshot.latest || this.#snapshot.stale) return;
    this.#staleTimer = setTimeout(() => {
      this.#snapshot = { ...this.#snapshot, stale: true };
      for (const listener of this.#listeners) listener();
    }, this.#maxAgeMs);
  }

  /** For `useSyncExternalStore`: a new object after every accepted tick. */
  getSnapshot = (): PriceSnapshot => this.#snapshot;

  subscribe = (listener: () => void): (() => void) => {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  };

  /** The chart's data so far (a copy). */
  points(): ChartPoint[] {
    return this.#points.slice();
  }

  /** Called with each new point; `reset` means the history was trimmed and should be reloaded. */
  onPoint(listener: PointListener): () => void {
    this.#pointListeners.add(listener);
    return () => this.#pointListeners.delete(listener);
  }
}
