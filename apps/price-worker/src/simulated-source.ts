import type { PriceQuote, PriceSource } from './price-source.ts';

export interface SimulatedSourceOptions {
  /** PRNG seed (a 32-bit unsigned integer). Default: random. The same seed gives the same prices. */
  seed?: number;
  /** Start price per symbol, as decimal strings. Default `{ SOL: '150.00' }`. */
  startPrices?: Record<string, string>;
  /**
   * Standard deviation of the log return per read (one read per tick). Default 0.00015: at one
   * tick a second that is about 84 % a year, SOL's usual realised volatility.
   */
  volatility?: number;
}

export const DEFAULT_START_PRICES: Readonly<Record<string, string>> = Object.freeze({ SOL: '150.00' });
export const DEFAULT_VOLATILITY = 0.00015;

/** Cents are kept as float-derived integers; this bound keeps them exact (< 2^53). */
const MAX_PRICE = 1e12;
const MIN_PRICE = 0.01;
const START_PRICE = /^(?:0|[1-9]\d{0,11})(?:\.\d{1,18})?$/;

export interface SimulatedSource extends PriceSource {
  /** The seed in use, so a run can be replayed (`PRICE_SEED`). */
  readonly seed: number;
}

/**
 * A seeded geometric random walk per symbol. Each `read` moves every asked symbol one step
 * (the first read answers the start price) and emits it rounded to cents, never below 0.01.
 * Each symbol has its own PRNG stream derived from (seed, symbol), so a symbol's path does not
 * depend on which other symbols are read with it. Symbols without a start price are left out.
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
  const startPrices = options.startPrices ?? DEFAULT_START_PRICES;
  const walks = new Map<string, Walk>();
  for (const [symbol, start] of Object.entries(startPrices)) {
    const value = Number(start);
    if (typeof start !== 'string' || !START_PRICE.test(start) || !(value >= MIN_PRICE)) {
      throw new RangeError(
        `simulated source: start price of ${symbol} must be a decimal string >= 0.01, got ${JSON.stringify(start)}`,
      );
    }
    walks.set(symbol, { logPrice: Math.log(value), random: mulberry32(mixSeed(seed, symbol)), started: false });
  }

  return {
    seed,
    async read(symbols) {
      const quotes: PriceQuote[] = [];
      for (const symbol of symbols) {
        const walk = walks.get(symbol);
        if (!walk) continue;
        if (walk.started) step(walk, volatility);
        walk.started = true;
        quotes.push({ symbol, price: formatCents(toCents(walk.logPrice)) });
      }
      return quotes;
    },
  };
}

interface Walk {
  logPrice: number;
  random: () => number;
  started: boolean;
}

function step(walk: Walk, volatility: number): void {
  // Box-Muller; 1 - u keeps the logarithm's argument in (0, 1].
  const u1 = 1 - walk.random();
  const u2 = walk.random();
  const z = Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
  // The -σ²/2 drift makes the price itself (not its log) a martingale: no built-in trend.
  const next = walk.logPrice + volatility * z - (volatility * volatility) / 2;
  // Clamped in log space so a walk that touches the floor can climb back instead of sticking.
  walk.logPrice = Math.min(Math.log(MAX_PRICE), Math.max(Math.log(MIN_PRICE), next));
}

function toCents(logPrice: number): number {
  return Math.max(1, Math.round(Math.exp(logPrice) * 100));
}

/** Integer cents → "123.45"; integer arithmetic only. */
export function formatCents(cents: number): string {
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
