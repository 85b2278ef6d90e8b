import { mkdirSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';
import { dirname } from 'node:path';
import { monitorEventLoopDelay, PerformanceObserver } from 'node:perf_hooks';
import { logGcPauses } from '../diagnostics/gc-log.ts';

/**
 * The runner's handle on a bench server process: the server reports `ready` with its port over
 * the IPC channel, answers `memory` requests (after a full GC, when started with --expose-gc)
 * and stops on SIGTERM or a `stop` request. Shared by the three servers so that each is
 * measured the same way.
 */

export interface ServerMemory {
  rss: number;
  heapUsed: number;
  external: number;
  arrayBuffers: number;
}

/** How the server's own event loop fared during a measured window. */
export interface ServerWindowStats {
  /** Event-loop delay p99 / max, ms (timer lateness at a 5 ms resolution). */
  lagP99Ms: number;
  lagMaxMs: number;
  /** Garbage-collection pauses on the main thread: count, total and longest, ms. */
  gcCount: number;
  gcTotalMs: number;
  gcMaxMs: number;
}

export type ControlRequest =
  | { cmd: 'memory' }
  | { cmd: 'stop' }
  | { cmd: 'window-start'; profile: boolean }
  | { cmd: 'window-end'; id: number; profileFile?: string };
export type ControlReply =
  | { type: 'ready'; port: number; pid: number }
  | ({ type: 'memory' } & ServerMemory)
  | ({ type: 'window'; id: number } & ServerWindowStats);

const STOP_DEADLINE_MS = 4000;
/** Sampling interval of the window profiler, µs (V8's default is 1000). */
const PROFILE_INTERVAL_US = 250;

function send(reply: ControlReply): void {
  process.send?.(reply);
}

async function collectGarbage(): Promise<void> {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) return;
  // Two passes with a turn of the event loop between them: the first frees objects whose
  // finalisers release more (weak refs, buffers), the second collects those.
  gc();
  await new Promise((resolve) => setImmediate(resolve));
  gc();
}

/**
 * One inspector session over one measured window, so that what it records covers the window
 * only (not start-up, not connection set-up): the CPU profile of `--profile`, or the
 * allocation sample of BENCH_HEAP_SAMPLING=<dir> (diagnosis only, never set by `npm run bench`:
 * every allocation, garbage included unless BENCH_HEAP_SAMPLING_MINOR=0, to find what feeds
 * the garbage collector on a hot path).
 */
class WindowInspector {
  #session: Session | null = null;
  readonly #begin: [method: string, params?: object][];
  readonly #end: string;

  constructor(begin: [method: string, params?: object][], end: string) {
    this.#begin = begin;
    this.#end = end;
  }

  async start(): Promise<void> {
    const session = new Session();
    session.connect();
    this.#session = session;
    for (const [method, params] of this.#begin) await post(session, method, params);
  }

  /** Writes what was recorded to `file`; nothing when the window was not started. */
  async stop(file: string): Promise<void> {
    const session = this.#session;
    if (!session) return;
    this.#session = null;
    const { profile } = (await post(session, this.#end)) as { profile: unknown };
    session.disconnect();
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, JSON.stringify(profile));
  }
}

const cpuProfiler = () =>
  new WindowInspector(
    [['Profiler.enable'], ['Profiler.setSamplingInterval', { interval: PROFILE_INTERVAL_US }], ['Profiler.start']],
    'Profiler.stop',
  );

const heapSampler = () =>
  new WindowInspector(
    [
      [
        'HeapProfiler.startSampling',
        {
          samplingInterval: 4096,
          includeObjectsCollectedByMajorGC: true,
          includeObjectsCollectedByMinorGC: process.env.BENCH_HEAP_SAMPLING_MINOR !== '0',
        },
      ],
    ],
    'HeapProfiler.stopSampling',
  );

/**
 * Event-loop delay and GC pauses over a window, the same instrument in every server, so a
 * latency tail can be told apart: the server stalled (GC, a long synchronous loop), or the
 * machine or the generator did.
 */
class WindowStats {
  readonly #delay = monitorEventLoopDelay({ resolution: 5 });
  #active = false;
  #gcCount = 0;
  #gcTotal = 0;
  #gcMax = 0;

  constructor() {
    new PerformanceObserver((list) => {
      if (!this.#active) return;
      for (const entry of list.getEntries()) {
        this.#gcCount++;
        this.#gcTotal += entry.duration;
        this.#gcMax = Math.max(this.#gcMax, entry.duration);
      }
    }).observe({ entryTypes: ['gc'] });
  }

  start(): void {
    this.#active = true;
    this.#gcCount = 0;
    this.#gcTotal = 0;
    this.#gcMax = 0;
    this.#delay.reset();
    this.#delay.enable();
  }

  stop(): ServerWindowStats {
    this.#active = false;
    this.#delay.disable();
    const round = (n: number) => Math.round(n * 100) / 100;
    return {
      lagP99Ms: round(this.#delay.percentile(99) / 1e6),
      lagMaxMs: round(this.#delay.max / 1e6),
      gcCount: this.#gcCount,
      gcTotalMs: round(this.#gcTotal),
      gcMaxMs: round(this.#gcMax),
    };
  }
}

function post(session: Session, method: string, params?: object): Promise<unknown> {
  return new Promise((resolve, reject) => {
    session.post(method, params ?? {}, (err, result) => (err ? reject(err) : resolve(result)));
  });
}

/** Wires the control channel for a server that listens on `port`; `close` stops it. */
export function serveControl(port: number, close: () => Promise<void>): void {
  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    setTimeout(() => process.exit(1), STOP_DEADLINE_MS).unref();
    close().then(
      () => process.exit(0),
      (err: unknown) => {
        process.stderr.write(`bench server: error while closing: ${String(err)}\n`);
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  // The runner going away (crash, Ctrl-C) closes the channel: never outlive it.
  process.on('disconnect', stop);
  const profiler = cpuProfiler();
  const stats = new WindowStats();
  const heap = heapSampler();
  const heapSamplingDir = process.env.BENCH_HEAP_SAMPLING;
  let heapWindows = 0;
  if (process.env.BENCH_DEBUG) logGcPauses('server');
  process.on('message', (raw: unknown) => {
    const request = raw as ControlRequest;
    if (request.cmd === 'stop') stop();
    else if (request.cmd === 'window-start') {
      stats.start();
      if (request.profile) void profiler.start();
      if (heapSamplingDir) void heap.start();
    } else if (request.cmd === 'window-end') {
      const measured = stats.stop();
      const profiled = Promise.all([
        request.profileFile ? profiler.stop(request.profileFile) : undefined,
        heapSamplingDir
          ? heap.stop(`${heapSamplingDir}/${process.pid}-window-${(heapWindows += 1)}.heapprofile`)
          : undefined,
      ]);
      void profiled.then(() => send({ type: 'window', id: request.id, ...measured }));
    } else if (request.cmd === 'memory') {
      void collectGarbage().then(() => {
        const m = process.memoryUsage();
        send({ type: 'memory', rss: m.rss, heapUsed: m.heapUsed, external: m.external, arrayBuffers: m.arrayBuffers });
      });
    }
  });
  send({ type: 'ready', port, pid: process.pid });
}
