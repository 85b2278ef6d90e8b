/**
 * A price is stale when its timestamp (the tick's, or Pyth's publish time) is more than
 * `maxAgeMs` before `nowMs`. Each symbol is judged by its own price. A timestamp that cannot
 * be read counts as stale; one slightly ahead of this clock (the worker's clock runs a little
 * ahead) counts as fresh.
 */
export function isPriceStale(timestamp: string, nowMs: number, maxAgeMs: number): boolean {
  const at = Date.parse(timestamp);
  return !Number.isFinite(at) || nowMs - at > maxAgeMs;
}
