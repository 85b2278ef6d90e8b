/**
 * The live price of one symbol: latest tick, the first price seen since the page opened
 * (the "change since open" reference), whether it is stale, and the recent ticks the chart
 * replays over its history. Ticks arrive from the REST snapshot and the WebSocket, sometimes
 * twice (a snapshot after a resubscribe): only a tick newer than the last one is kept, so the
 * chart's time axis always moves forward.
 */
import type { Price } from './api.ts';
import type { Tick } from './candle-series.ts';

/** Ticks kept for the chart to replay over history it loads (minutes at Pyth's pace). */
const RECENT_TICKS = 1000;

/**
 * Ticks of a market arriving this long after the previous one mean the page missed some (the
 * device slept, the network stalled while the socket stayed open): the chart refetches.
 */
export const ARRIVAL_GAP_MS = 10_000;

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

/** `gap`: the tick came `ARRIVAL_GAP_MS` or more after the previous one. */
export type TickListener = (tick: Tick, gap: boolean) => void;

export class PriceFeed {
  readonly symbol: string;
  #snapshot: PriceSnapshot = { latest: null, opening: null, previous: null, ticks: 0, stale: false };
  #maxAgeMs: number | null = null;
  #staleTimer: ReturnType<typeof setTimeout> | undefined;
  #recent: Tick[] = [];
  #lastTime = -Infinity;
  #lastArrival: number | null = null;
  #listeners = new Set<() => void>();
  #tickListeners = new Set<TickListener>();

  constructor(symbol: string) {
    this.symbol = symbol;
  }

  /**
   * Adds a tick; returns false when it is for another symbol, malformed, or not newer than the
   * last. The server's word that the latest tick is stale (`GET /prices` for the same tick, which
   * the WebSocket's snapshot may have delivered first without a verdict) still counts.
   */
  push(price: Price): boolean {
    if (price.symbol !== this.symbol) return false;
    const timeMs = Date.parse(price.timestamp);
    if (timeMs === this.#lastTime && price.stale === true && !this.#snapshot.stale) this.#markStale();
    if (!Number.isFinite(timeMs) || timeMs <= this.#lastTime) return false;
    this.#lastTime = timeMs;

    const tick = { price: price.price, timeMs };
    this.#recent.push(tick);
    // Trimming in batches keeps the copy rare.
    if (this.#recent.length > RECENT_TICKS * 1.2) this.#recent = this.#recent.slice(-RECENT_TICKS);
    const arrival = Date.now();
    const gap = this.#lastArrival !== null && arrival - this.#lastArrival >= ARRIVAL_GAP_MS;
    this.#lastArrival = arrival;

    const prev = this.#snapshot;
    this.#snapshot = {
      latest: price,
      opening: prev.opening ?? price.price,
      previous: prev.latest?.price ?? null,
      ticks: prev.ticks + 1,
      stale: price.stale === true,
    };
    this.#armStaleTimer();
    for (const listener of this.#tickListeners) listener(tick, gap);
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
    this.#staleTimer = setTimeout(() => this.#markStale(), this.#maxAgeMs);
  }

  #markStale(): void {
    clearTimeout(this.#staleTimer);
    this.#snapshot = { ...this.#snapshot, stale: true };
    for (const listener of this.#listeners) listener();
  }

  /** For `useSyncExternalStore`: a new object after every accepted tick. */
  getSnapshot = (): PriceSnapshot => this.#snapshot;

  subscribe = (listener: () => void): (() => void) => {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  };

  /** The latest ticks, oldest first (at most `RECENT_TICKS` and a fifth). */
  recentTicks(): readonly Tick[] {
    return this.#recent;
  }

  /** Called with each accepted tick. */
  onTick(listener: TickListener): () => void {
    this.#tickListeners.add(listener);
    return () => this.#tickListeners.delete(listener);
  }
}

/** Feeds at most this many markets: a server sending ticks of endless symbols cannot grow the page. */
const MAX_MARKETS = 64;

/** One `PriceFeed` per market, each with its own staleness: one market going stale blocks only itself. */
export class MarketFeeds {
  #feeds = new Map<string, PriceFeed>();
  #maxAgeMs: number | null = null;
  #version = 0;
  #listeners = new Set<() => void>();

  /** The feed of `symbol`, created on first use. */
  feed(symbol: string): PriceFeed {
    let feed = this.#feeds.get(symbol);
    if (!feed) {
      feed = new PriceFeed(symbol);
      feed.setMaxAge(this.#maxAgeMs);
      if (this.#feeds.size < MAX_MARKETS) {
        this.#feeds.set(symbol, feed);
        feed.subscribe(() => {
          this.#version++;
          for (const listener of this.#listeners) listener();
        });
      }
    }
    return feed;
  }

  /** The latest price of `symbol`, or null. */
  latestPrice(symbol: string): string | null {
    return this.#feeds.get(symbol)?.getSnapshot().latest?.price ?? null;
  }

  /** For `useSyncExternalStore`: changes whenever any market's snapshot does. */
  getVersion = (): number => this.#version;

  subscribe = (listener: () => void): (() => void) => {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  };

  /** Routes a tick to its market's feed; false when it was not accepted. */
  push(price: Price): boolean {
    if (!this.#feeds.has(price.symbol) && this.#feeds.size >= MAX_MARKETS) return false;
    return this.feed(price.symbol).push(price);
  }

  setMaxAge(ms: number | null): void {
    this.#maxAgeMs = ms;
    for (const feed of this.#feeds.values()) feed.setMaxAge(ms);
  }

  dispose(): void {
    for (const feed of this.#feeds.values()) feed.dispose();
  }
}
