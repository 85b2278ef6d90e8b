/**
 * Diagnosis only, never loaded by the product: preloaded into every process of the gateway node
 * by the connections benchmark (`--import loop-delay-hook.ts`, after tsx's loader; the workers
 * inherit it). Every 5 s it writes the longest event-loop delay of the last 5 s to stderr, so the
 * storm log can tell a worker whose loop was held from a client whose loop was.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { LOOP_DELAY_LINE } from './messages.ts';

const delay = monitorEventLoopDelay({ resolution: 20 });
delay.enable();
setInterval(() => {
  process.stderr.write(`${LOOP_DELAY_LINE} ${process.pid} ${Math.round(delay.max / 1e6)}\n`);
  delay.reset();
}, 5000).unref();
