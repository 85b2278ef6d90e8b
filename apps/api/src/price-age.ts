/**
 * A price is stale when its timestamp (the tick's, or Pyth's publish time) is more than
 * `maxAgeMs` away from `nowMs`: older, or ahead of this clock. Each symbol is judged by its own
 * price, and a timestamp that cannot be read counts as stale. A timestamp slightly ahead (the
 * worker's clock runs a little ahead of this one) is fresh; one further ahead than `maxAgeMs`
 * is a bad timestamp, not a fresh price: taken as fresh, it would stay "fresh" until the clock
 * caught up with it, whatever happened to the price meanwhile.
 */
export function isPriceStale(timestamp: string, nowMs: number, maxAgeMs: number): boolean {
  const at = Date.parse(timestamp);
  return !Number.isFinite(at) || Math.abs(nowMs - at) > maxAgeMs;
}
