import type { PriceUpdateEvent } from '@repo/events';

/** The last live tick of a symbol, with the frame already built for it. */
export interface CachedPrice {
  event: PriceUpdateEvent;
  frame: Buffer;
}

/**
 * The gateway's own memory of the last live tick per symbol, for the `prices` snapshot. It
 * also remembers which symbols exist: the configured ones plus every one seen live, at most
 * `maxSymbols` (a confused publisher inventing symbols cannot grow it without bound; ticks
 * of symbols past the cap are still delivered live, only not remembered).
 */
export class PriceCache {
  readonly #configured: readonly string[];
  readonly #latest = new Map<string, CachedPrice>();
  readonly #maxSymbols: number;

  constructor(configured: readonly string[], maxSymbols: number) {
    this.#configured = [...new Set(configured)];
    this.#maxSymbols = maxSymbols;
  }

  remember(event: PriceUpdateEvent, frame: Buffer): void {
    if (this.#latest.size >= this.#maxSymbols && !this.#latest.has(event.symbol)) return;
    this.#latest.set(event.symbol, { event, frame });
  }

  get(symbol: string): CachedPrice | undefined {
    return this.#latest.get(symbol);
  }

  /** Configured symbols first, then the others seen live. */
  symbols(): string[] {
    const all = new Set(this.#configured);
    for (const symbol of this.#latest.keys()) all.add(symbol);
    return [...all];
  }
}
