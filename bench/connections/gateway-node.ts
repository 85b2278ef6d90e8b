import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readdirSync, readFileSync } from 'node:fs';
import { request } from 'node:http';
import { sleep } from '../lib/clock.ts';
import { ROOT } from '../lib/processes.ts';
import { processCpuMicros, processRssBytes } from '../lib/proc-stat.ts';
import { LOOP_DELAY_LINE } from './messages.ts';

export interface GatewayNodeOptions {
  port: number;
  redisUrl: string;
  databaseUrl: string;
  /** `WS_WORKERS`; 0 leaves it unset (one process). */
  workers: number;
  /** `WS_MAX_CONNECTIONS`. */
  maxConnections: number;
  /**
   * Node flags after tsx's loader, so that an `--import` of a TypeScript file works: for the
   * diagnosis probes only (e.g. the memory probe's `--expose-gc --import memory-hook.ts`).
   */
  nodeFlags?: string[];
}

/** Every node still running, so that an interrupted run still stops each process by its PID. */
const running = new Set<GatewayNode>();
process.on('exit', () => {
  for (const node of running) {
    for (const pid of node.processes()) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // Already gone.
      }
    }
  }
});

/**
 * One tradewire gateway node started the way an operator starts it (`npm start -- ws`, with
 * `WS_WORKERS` when set): the launcher, not a bench harness, so every default holds. Only the
 * benchmark's client addresses are exempt from the per-address limits (`WS_LIMIT_EXEMPT`), as
 * for any load test from one host. Stopped by its PID.
 */
export class GatewayNode {
  readonly options: GatewayNodeOptions;
  #child: ChildProcess | null = null;
  #stderr = '';
  /** "gateway worker exited" lines the node logged since it was constructed (its workers' crashes). */
  workerExits = 0;
  /** Longest event-loop delay per process since the last `takeLoopDelays()`, from `loop-delay-hook.ts`. */
  readonly #loopDelayMaxMs = new Map<number, number>();

  constructor(options: GatewayNodeOptions) {
    this.options = options;
  }

  get pid(): number {
    if (!this.#child?.pid) throw new Error('the gateway node is not running');
    return this.#child.pid;
  }

  /** Starts the node and resolves once `/health` answers and every worker is up. */
  async start(timeoutMs = 300_000): Promise<void> {
    const { port, redisUrl, databaseUrl, workers, maxConnections } = this.options;
    this.#stderr = '';
    // For diagnosis only (never set by `npm run bench`): e.g. BENCH_GATEWAY_NODE_FLAGS='--cpu-prof'.
    const flags = process.env.BENCH_GATEWAY_NODE_FLAGS?.split(' ').filter(Boolean) ?? [];
    const probeFlags = this.options.nodeFlags ?? [];
    const args = [...flags, '--import', 'tsx', ...probeFlags, 'apps/server/src/main.ts', 'ws'];
    const child = spawn(process.execPath, args, {
      cwd: ROOT,
      env: {
        ...process.env,
        HOST: '127.0.0.1',
        WS_PORT: String(port),
        REDIS_URL: redisUrl,
        DATABASE_URL: databaseUrl,
        WS_LIMIT_EXEMPT: '127.0.0.0/8',
        // The node-wide cap (20,000 by default) must admit every client of the run.
        WS_MAX_CONNECTIONS: String(maxConnections),
        LOG_LEVEL: process.env.BENCH_GATEWAY_LOG_LEVEL ?? 'warn',
        ...(workers > 0 ? { WS_WORKERS: String(workers) } : {}),
      },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    this.#child = child;
    running.add(this);
    let partial = '';
    child.stderr.on('data', (chunk: Buffer) => {
      // The loop-delay hook's lines are readings, not the node's output: kept apart.
      const lines = (partial + chunk.toString('utf8')).split('\n');
      partial = lines.pop()!;
      const text = lines
        .filter((line) => {
          if (!line.startsWith(LOOP_DELAY_LINE)) return true;
          const [pid, ms] = line.slice(LOOP_DELAY_LINE.length).trim().split(' ').map(Number);
          if (pid && ms !== undefined) this.#loopDelayMaxMs.set(pid, Math.max(ms, this.#loopDelayMaxMs.get(pid) ?? 0));
          return false;
        })
        .map((line) => `${line}\n`)
        .join('');
      if (text === '') return;
      this.workerExits += text.split('gateway worker exited').length - 1;
      this.#stderr = (this.#stderr + text).slice(-16_384);
      if (process.env.BENCH_DEBUG) process.stderr.write(chunk);
    });
    const deadline = Date.now() + timeoutMs;
    const expected = workers > 0 ? workers + 1 : 1;
    while (!(await healthy(port)) || this.processes().length < expected) {
      if (child.exitCode !== null || child.signalCode !== null) {
        throw new Error(`the gateway node exited (${child.exitCode ?? child.signalCode}): ${this.#stderr}`);
      }
      if (Date.now() > deadline) throw new Error(`the gateway node was not ready in ${timeoutMs} ms: ${this.#stderr}`);
      await sleep(100);
    }
  }

  /** SIGTERM (the graceful shutdown: every socket closed with 1001), SIGKILL after `graceMs`. */
  async stop(graceMs = 15_000): Promise<void> {
    const child = this.#child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = once(child, 'exit');
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    await exited;
    clearTimeout(timer);
    this.#child = null;
    running.delete(this);
  }

  /**
   * The node's Node.js processes: the launcher and its workers. tsx's esbuild service (a child
   * that only compiled the sources at start-up) is not part of the gateway.
   */
  processes(): number[] {
    const child = this.#child;
    if (!child?.pid) return [];
    return processTree(child.pid).filter(
      (pid) => tryRead(() => readFileSync(`/proc/${pid}/comm`, 'utf8').trim()) === 'node',
    );
  }

  /** RSS summed over the node's processes. */
  rssBytes(): number {
    return this.processes().reduce((sum, pid) => sum + (tryRead(() => processRssBytes(pid)) ?? 0), 0);
  }

  /** CPU time (user + system) summed over the node's processes, in µs. */
  cpuMicros(): number {
    return this.processes().reduce((sum, pid) => sum + (tryRead(() => processCpuMicros(pid)) ?? 0), 0);
  }

  /**
   * Open file descriptors of each of the node's processes, the launcher (the cluster primary)
   * first: the primary holds every accepted connection until a worker takes it (at most 2,048 wait).
   */
  /**
   * Each process's longest event-loop delay (ms) reported since the last call, in `processes()`
   * order (-1 for none): only with `loop-delay-hook.ts` preloaded (`nodeFlags`).
   */
  takeLoopDelays(): number[] {
    const delays = this.processes().map((pid) => this.#loopDelayMaxMs.get(pid) ?? -1);
    this.#loopDelayMaxMs.clear();
    return delays;
  }

  openFds(): number[] {
    return this.processes().map((pid) => tryRead(() => readdirSync(`/proc/${pid}/fd`).length) ?? 0);
  }

  stderr(): string {
    return this.#stderr;
  }
}

/** `pid` and its descendants, from `/proc/<pid>/task/<tid>/children` of each thread. */
export function processTree(pid: number): number[] {
  const all = [pid];
  for (let i = 0; i < all.length; i++) {
    const parent = all[i]!;
    for (const tid of tryRead(() => readdirSync(`/proc/${parent}/task`)) ?? []) {
      const children = tryRead(() => readFileSync(`/proc/${parent}/task/${tid}/children`, 'utf8')) ?? '';
      for (const child of children.trim().split(/\s+/)) if (child) all.push(Number(child));
    }
  }
  return all;
}

function tryRead<T>(read: () => T): T | undefined {
  try {
    return read();
  } catch {
    // The process ended between the listing and the read.
    return undefined;
  }
}

function healthy(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port, path: '/health', timeout: 2000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('error', () => resolve(false));
    req.on('timeout', () => req.destroy());
    req.end();
  });
}
