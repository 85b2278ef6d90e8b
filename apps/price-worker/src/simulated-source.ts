import type { PriceQuote, PriceSource } from './price-source.ts';

export interface SimulatedSourceOptions {
  /** PRNG seed (a 32-bit unsigned integer). Default: random. The same seed gives the same prices. */
  seed?: number;
  /**
   * Start price per symbol, as decimal strings; each walk also drifts back towards it. Default
   * `{ SOL: '200.00', BTC: '80000.00', ETH: '3000.00' }`.
   */
  startPrices?: Record<string, string>;
  /**
   * Standard deviation of the log return per read (one read per tick). Default 0.00015: at one
   * tick a second that is about 84 % a year, SOL's usual realised volatility.
   */
  volatility?: number;
  /**
   * Reads after which half of a walk's distance (in log price) from its start price is undone.
   * Default 604800, a week at one tick a second: a day still moves a few percent, but a walk left
   * running for months stays at a plausible level (about ±10 % for one standard deviation)
   * instead of wandering off. `Infinity` turns it off.
   */
  meanReversionHalfLife?: number;
  /** Start price of a symbol asked for that `startPrices` does not name. Default "100.00". */
  otherStartPrice?: string;
}

export const DEFAULT_START_PRICES: Readonly<Record<string, string>> = Object.freeze({
  SOL: '200.00',
  BTC: '80000.00',
  ETH: '3000.00',
});
export const DEFAULT_VOLATILITY = 0.00015;
export const DEFAULT_MEAN_REVERSION_HALF_LIFE = 604_800;

/** Cents are kept as float-derived integers; this bound keeps them exact (< 2^53). */
const MAX_PRICE = 1e12;
const MIN_PRICE = 0.01;
const START_PRICE = /^(?:0|[1-9]\d{0,11})(?:\.\d{1,18})?$/;

export interface SimulatedSource extends PriceSource {
  /** The seed in use, so a run can be replayed (`PRICE_SEED`). */
  readonly seed: number;
}

/**
 * A seeded random walk per symbol, in log price and slowly pulled back to its start price (an
 * Ornstein-Uhlenbeck process). Each `read` moves every asked symbol one step (the first read
 * answers the start price) and emits it rounded to cents, never below 0.01.
 * Each symbol has its own PRNG stream derived from (seed, symbol), so a symbol's path does not
 * depend on which other symbols are read with it. Every symbol asked for is priced: one without
 * a start price walks from `otherStartPrice`.
 *
 * Floats are fine for the walk itself; the emitted string is built from integer cents so it
 * is always an exact 2-decimal string.
 */
export function createSimulatedSource(options: SimulatedSourceOptions = {}): SimulatedSource {
  const seed = options.seed ?? Math.floor(Math.random() * 2 ** 32);
  if (!Number.isInteger(seed) || seed < 0 || seed >= 2 ** 32) {
    throw new RangeError(`simulated source: seed must be an integer in [0, 2^32), got ${String(options.seed)}`);
  }
  const volatility = options.volatility ?? DEFAULT_VOLATILITY;
  if (!Number.isFinite(volatility) || volatility < 0 || volatility > 0.5) {
    throw new RangeError(
      `simulated source: volatility must be a number in [0, 0.5], got ${String(options.volatility)}`,
    );
  }
  const halfLife = options.meanReversionHalfLife ?? DEFAULT_MEAN_REVERSION_HALF_LIFE;
  if (!(halfLife > 0)) {
    throw new RangeError(
      `simulated source: meanReversionHalfLife must be a positive number of reads or Infinity, got ${String(halfLife)}`,
    );
  }
  // The share of the distance to the anchor undone per step; 0 when the half-life is infinite.
  const reversion = 1 - 2 ** (-1 / halfLife);
  const walks = new Map<string, Walk>();
  const walkFrom = (symbol: string, start: string): Walk => {
    const value = Number(start);
    if (typeof start !== 'string' || !START_PRICE.test(start) || !(value >= MIN_PRICE)) {
      throw new RangeError(
        `simulated source: start price of ${symbol} must be a decimal string >= 0.01, got ${JSON.stringify(start)}`,
      );
    }
    const anchor = Math.log(value);
    return { anchor, logPrice: anchor, random: mulberry32(mixSeed(seed, symbol)), started: false };
  };
  for (const [symbol, start] of Object.entries(options.startPrices ?? DEFAULT_START_PRICES)) {
    walks.set(symbol, walkFrom(symbol, start));
  }
  const otherStartPrice = options.otherStartPrice ?? '100.00';
  walkFrom('otherStartPrice', otherStartPrice);

  return {
    seed,
    read(symbols) {
      const quotes: PriceQuote[] = [];
      for (const symbol of symbols) {
        let walk = walks.get(symbol);
        if (!walk) {
          walk = walkFrom(symbol, otherStartPrice);
          walks.set(symbol, walk);
        }
        if (walk.started) step(walk, volatility, reversion);
        walk.started = true;
        quotes.push({ symbol, price: formatCents(toCents(walk.logPrice)) });
      }
      return Promise.resolve(quotes);
    },
  };
}

interface Walk {
  /** Log of the start price, where the walk is pulled back to. */
  anchor: number;
  logPrice: number;
  random: () => number;
  started: boolean;
}

function step(walk: Walk, volatility: number, reversion: number): void {
  // Box-Muller; 1 - u keeps the logarithm's argument in (0, 1].
  const u1 = 1 - walk.random();
  const u2 = walk.random();
  const z = Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
  const next = walk.logPrice + reversion * (walk.anchor - walk.logPrice) + volatility * z;
  // Clamped in log space so a walk that touches the floor can climb back instead of sticking.
  walk.logPrice = Math.min(Math.log(MAX_PRICE), Math.max(Math.log(MIN_PRICE), next));
}

function toCents(logPrice: number): number {
  return Math.max(1, Math.round(Math.exp(logPrice) * 100));
}

/** Integer cents → "123.45"; integer arithmetic only. */
function formatCents(cents: number): string {
  const whole = Math.floor(cents / 100);
  const rest = cents % 100;
  return `${whole}.${rest < 10 ? '0' : ''}${rest}`;
}

/** Small, fast, well-distributed 32-bit PRNG; floats in [0, 1). */
function mulberry32(state: number): () => number {
  let a = state >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** FNV-1a of the symbol folded into the seed: one independent stream per (seed, symbol). */
function mixSeed(seed: number, symbol: string): number {
  let hash = 0x811c9dc5 ^ seed;
  for (let i = 0; i < symbol.length; i++) {
    hash ^= symbol.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0;
}
