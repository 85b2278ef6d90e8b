import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import { monoMs } from '../lib/clock.ts';
import { logGcPauses } from '../diagnostics/gc-log.ts';
import { runQueueWaitMs } from '../lib/proc-stat.ts';

/** How busy the load generator itself was during a measured window. */
export interface GeneratorHealth {
  /** CPU of the whole generator process (receiving and publisher threads), % of one core. */
  cpuPct: number;
  /** Event-loop delay of the receiving thread, ms. */
  lagP99Ms: number;
  lagMaxMs: number;
  /** Share of the window the receiving thread waited for a CPU (other processes on its core), %. */
  waitPct: number;
}

/**
 * Watches the generator's own CPU and event-loop lag, so a result can say whether the
 * generator kept out of the way. Near 100% CPU or a lag of tens of ms means the figures are
 * the generator's limit, not the server's.
 */
export class SelfWatch {
  #cpu = process.cpuUsage();
  #start = monoMs();
  #wait = 0;
  #histogram: IntervalHistogram = monitorEventLoopDelay({ resolution: 5 });

  start(): void {
    this.#cpu = process.cpuUsage();
    this.#start = monoMs();
    this.#wait = runQueueWaitMs(process.pid);
    this.#histogram.reset();
    this.#histogram.enable();
  }

  stop(): GeneratorHealth {
    this.#histogram.disable();
    const cpu = process.cpuUsage(this.#cpu);
    const elapsedMs = monoMs() - this.#start;
    return {
      cpuPct: round1(((cpu.user + cpu.system) / 1000 / elapsedMs) * 100),
      lagP99Ms: round1(this.#histogram.percentile(99) / 1e6),
      lagMaxMs: round1(this.#histogram.max / 1e6),
      waitPct: round1(((runQueueWaitMs(process.pid) - this.#wait) / elapsedMs) * 100),
    };
  }
}

function round1(n: number): number {
  return Math.round(n * 10) / 10;
}

// For diagnosis only: BENCH_DEBUG shows the generator's own GC pauses.
if (process.env.BENCH_DEBUG) logGcPauses('generator');
