/**
 * One clock for the whole benchmark: CLOCK_MONOTONIC through `process.hrtime`, which is the
 * same in every thread and every process of the machine (unlike `performance.now()`, whose
 * origin differs per worker thread). Milliseconds with nanosecond resolution.
 */
export function monoMs(): number {
  const [s, ns] = process.hrtime();
  return s * 1e3 + ns / 1e6;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
