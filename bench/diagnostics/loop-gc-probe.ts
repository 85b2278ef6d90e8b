// For diagnosis: load into a process with `--import` (e.g. BENCH_API_NODE_FLAGS='--import
// ./bench/diagnostics/loop-gc-probe.ts') to append its event-loop gaps over 15 ms and its GC
// pauses of 3 ms or more, with wall-clock times, to `$PROBE_DIR/loop-<pid>.txt` (default /tmp):
// `<ms> gap <ms>` and `<ms> gc <ms> kind<n>` (1 scavenge, 4 mark-compact, 8 incremental marking),
// to set beside BENCH_ORDER_TIMELINE and pg-wait-sampler.ts. The 5 ms timer costs a little CPU.
import { appendFileSync } from 'node:fs';
import { PerformanceObserver, performance } from 'node:perf_hooks';

const out = `${process.env.PROBE_DIR ?? '/tmp'}/loop-${process.pid}.txt`;
appendFileSync(out, `# ${process.argv.slice(1).join(' ')}\n`);
let lines: string[] = [];
let last = Date.now();
setInterval(() => {
  const now = Date.now();
  if (now - last > 15) lines.push(`${now} gap ${now - last}`);
  last = now;
}, 5).unref();
new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) {
    if (entry.duration >= 3) {
      const at = Math.round(performance.timeOrigin + entry.startTime);
      lines.push(
        `${at} gc ${entry.duration.toFixed(1)} kind${(entry as { detail?: { kind?: number } }).detail?.kind ?? '?'}`,
      );
    }
  }
}).observe({ entryTypes: ['gc'] });
setInterval(() => {
  if (lines.length) appendFileSync(out, `${lines.join('\n')}\n`);
  lines = [];
}, 500).unref();
