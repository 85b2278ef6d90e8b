/**
 * Percentile of `sorted` (ascending) by the nearest-rank method. `Infinity` entries stand for
 * deliveries that never arrived, so a server that loses messages cannot report a good p99.
 */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1]!;
}

export function median(values: readonly number[]): number {
  const finite = values.filter((v) => !Number.isNaN(v));
  if (finite.length === 0) return Number.NaN;
  const sorted = [...finite].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

export interface LatencySummary {
  /** Deliveries expected (events × recipients). */
  expected: number;
  /** Deliveries that arrived. */
  delivered: number;
  p50: number;
  p99: number;
  max: number;
}

/**
 * Summarises latencies in ms. Expected deliveries that never arrived count as infinitely
 * late: they push p99 and max to Infinity instead of silently vanishing.
 */
export function summariseLatencies(samples: Float64Array, count: number, expected: number): LatencySummary {
  const missing = Math.max(0, expected - count);
  const all = new Float64Array(count + missing);
  all.set(samples.subarray(0, count));
  all.fill(Number.POSITIVE_INFINITY, count);
  all.sort();
  return {
    expected,
    delivered: count,
    p50: percentile(all, 50),
    p99: percentile(all, 99),
    max: all.length > 0 ? all[all.length - 1]! : Number.NaN,
  };
}

/** Rounds to 0.01 (figures are ms or µs; more digits are noise). */
export function round2(n: number): number {
  return Number.isFinite(n) ? Math.round(n * 100) / 100 : n;
}

/** A latency in ms for the results: null stands for "never" (the percentile fell on a lost delivery). */
export function msOrNull(n: number): number | null {
  return Number.isFinite(n) ? round2(n) : null;
}

export interface LinearFit {
  slope: number;
  intercept: number;
  /** Each point's distance from the line (y − fitted y), in the points' order. */
  residuals: number[];
  /** The slope's standard error (NaN with fewer than three points). */
  slopeError: number;
}

/** The least-squares line through the points (`xs[i]`, `ys[i]`). */
export function linearFit(xs: readonly number[], ys: readonly number[]): LinearFit {
  const n = xs.length;
  const mx = xs.reduce((a, b) => a + b, 0) / n;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let sxx = 0;
  let sxy = 0;
  for (let i = 0; i < n; i++) {
    sxx += (xs[i]! - mx) ** 2;
    sxy += (xs[i]! - mx) * (ys[i]! - my);
  }
  const slope = sxy / sxx;
  const intercept = my - slope * mx;
  const residuals = xs.map((x, i) => ys[i]! - (intercept + slope * x));
  const sse = residuals.reduce((a, r) => a + r * r, 0);
  const slopeError = n > 2 ? Math.sqrt(sse / (n - 2) / sxx) : Number.NaN;
  return { slope, intercept, residuals, slopeError };
}
