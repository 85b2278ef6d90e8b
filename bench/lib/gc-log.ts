import { PerformanceObserver } from 'node:perf_hooks';

/**
 * For diagnosis (BENCH_DEBUG): writes each GC pause of this process of 1 ms or more to stderr,
 * with its kind (1 minor, 4 major, 8 incremental, 16 weak callbacks) and the heap in use, so a
 * latency tail can be lined up with the collections on either side.
 */
export function logGcPauses(who: string): void {
  new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      if (entry.duration < 1) continue;
      const kind = (entry as PerformanceEntry & { detail?: { kind?: number } }).detail?.kind;
      process.stderr.write(`${who} gc: kind ${kind} ${entry.duration.toFixed(1)} ms, heap ${(process.memoryUsage().heapUsed / 2 ** 20).toFixed(0)} MiB\n`);
    }
  }).observe({ entryTypes: ['gc'] });
}
