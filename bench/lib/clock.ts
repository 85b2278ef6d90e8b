/**
 * One clock for the whole benchmark: CLOCK_MONOTONIC through `process.hrtime`, which is the
 * same in every thread and every process of the machine (unlike `performance.now()`, whose
 * origin differs per worker thread). Milliseconds with nanosecond resolution.
 */
export function monoMs(): number {
  const [s, ns] = process.hrtime();
  return s * 1e3 + ns / 1e6;
}

/**
 * `monoMs()` without its array allocation, for the receiving hot path: `performance.now()`
 * reads the same monotonic clock (libuv's hrtime) from a per-thread origin, so one offset
 * measured at start maps it onto `monoMs()`'s time line.
 */
export function fastMonoClock(): () => number {
  const offset = monoMs() - performance.now();
  return () => performance.now() + offset;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
