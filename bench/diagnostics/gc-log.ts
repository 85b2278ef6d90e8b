import { performance, PerformanceObserver } from 'node:perf_hooks';
import { monoMs } from '../lib/clock.ts';

/**
 * For diagnosis (BENCH_DEBUG, loop-gc-probe.ts): writes each GC pause of this process of
 * `minMs` or more (default 1) to `write` (default stderr), with when it started (monoMs, the
 * bench's one clock), with its kind (1 minor, 4 major, 8 incremental, 16 weak callbacks) and
 * the heap in use, so a latency tail can be lined up with the collections on either side.
 */
export function logGcPauses(
  who: string,
  { minMs = 1, write = (line: string) => void process.stderr.write(line) }: GcLogOptions = {},
): void {
  // The pause's start on monoMs()'s time line, shared by every process of the bench.
  const offset = monoMs() - performance.now();
  new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      if (entry.duration < minMs) continue;
      const kind = (entry as PerformanceEntry & { detail?: { kind?: number } }).detail?.kind;
      write(
        `${who} gc: at ${(offset + entry.startTime).toFixed(1)} kind ${kind} ` +
          `${entry.duration.toFixed(1)} ms, ` +
          `heap ${(process.memoryUsage().heapUsed / 2 ** 20).toFixed(0)} MiB\n`,
      );
    }
  }).observe({ entryTypes: ['gc'] });
}

export interface GcLogOptions {
  minMs?: number;
  write?: (line: string) => void;
}
