// For diagnosis: load into a process with `--import` (e.g. BENCH_API_NODE_FLAGS='--import
// ./bench/diagnostics/loop-gc-probe.ts') to append its event-loop gaps over 15 ms and its GC
// pauses of 3 ms or more (gc-log.ts) to `$PROBE_DIR/loop-<pid>.txt` (default /tmp), timed on
// the bench's one clock (monoMs), as BENCH_ORDER_TIMELINE and pg-wait-sampler.ts are. The 5 ms
// timer costs a little CPU; PROBE_LOOP=0 leaves it out (GC pauses only).
import { appendFileSync } from 'node:fs';
import { monoMs } from '../lib/clock.ts';
import { logGcPauses } from './gc-log.ts';

const out = `${process.env.PROBE_DIR ?? '/tmp'}/loop-${process.pid}.txt`;
appendFileSync(out, `# ${process.argv.slice(1).join(' ')}\n`);
let lines: string[] = [];
let last = monoMs();
if (process.env.PROBE_LOOP !== '0') {
  setInterval(() => {
    const now = monoMs();
    if (now - last > 15) lines.push(`loop gap: at ${last.toFixed(1)} ${(now - last).toFixed(1)} ms\n`);
    last = now;
  }, 5).unref();
}
logGcPauses(String(process.pid), { minMs: 3, write: (line) => lines.push(line) });
setInterval(() => {
  if (lines.length) appendFileSync(out, lines.join(''));
  lines = [];
}, 500).unref();
