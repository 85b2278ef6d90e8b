import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { ROOT } from '../lib/processes.ts';
import { emptyCounters, type Counters, type FromLoad, type LoadConfig, type ToLoad } from './messages.ts';

const ENTRY = fileURLToPath(new URL('./load-process.ts', import.meta.url));

/** How often a wait for every process's answer names the ones still silent. */
const LATE_EVERY_MS = 15_000;

/** Every load process ever started, so that an interrupted run still stops them by PID. */
const running = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

/** The load processes of the connections benchmark, spoken to as one. */
export class LoadFleet {
  readonly #children: ChildProcess[];
  readonly #inboxes: FromLoad[][];
  readonly #waiters: (() => void)[] = [];

  private constructor(children: ChildProcess[]) {
    this.#children = children;
    this.#inboxes = children.map(() => []);
    children.forEach((child, i) => {
      child.on('message', (message: FromLoad) => {
        this.#inboxes[i]!.push(message);
        for (const wake of this.#waiters.splice(0)) wake();
      });
      child.on('exit', () => {
        running.delete(child);
        for (const wake of this.#waiters.splice(0)) wake();
      });
    });
  }

  /** Starts one process per config and waits until each is listening. */
  static async start(configs: LoadConfig[]): Promise<LoadFleet> {
    const children = configs.map((config) => {
      const child = spawn(process.execPath, ['--import', 'tsx', ENTRY, JSON.stringify(config)], {
        cwd: ROOT,
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      });
      running.add(child);
      return child;
    });
    const fleet = new LoadFleet(children);
    await fleet.gather('ready', 60_000);
    return fleet;
  }

  get pids(): number[] {
    return this.#children.map((c) => c.pid!);
  }

  send(message: ToLoad): void {
    for (const child of this.#children) child.send(message);
  }

  /**
   * The next message of `type` from every process, in process order. `onLate` hears, every
   * `LATE_EVERY_MS` of waiting, which processes have not answered yet.
   */
  async gather<T extends FromLoad['type']>(
    type: T,
    timeoutMs: number,
    onLate?: (missing: number[], waitedMs: number) => void,
  ): Promise<Extract<FromLoad, { type: T }>[]> {
    const started = Date.now();
    const deadline = started + timeoutMs;
    let lateReportedAt = started;
    for (;;) {
      const dead = this.#children.findIndex((c) => c.exitCode !== null || c.signalCode !== null);
      if (dead !== -1) throw new Error(`load process ${dead} exited (${this.#children[dead]!.exitCode})`);
      const error = this.#inboxes.flat().find((m) => m.type === 'error');
      if (error?.type === 'error') throw new Error(`load process: ${error.message}`);
      if (this.#inboxes.every((inbox) => inbox.some((m) => m.type === type))) {
        return this.#inboxes.map((inbox) => {
          const at = inbox.findIndex((m) => m.type === type);
          return inbox.splice(at, 1)[0] as Extract<FromLoad, { type: T }>;
        });
      }
      if (onLate && Date.now() - lateReportedAt >= LATE_EVERY_MS) {
        lateReportedAt = Date.now();
        const missing = this.#inboxes.flatMap((inbox, i) => (inbox.some((m) => m.type === type) ? [] : [i]));
        onLate(missing, lateReportedAt - started);
      }
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no "${type}" from every load process within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(left, 1000));
        this.#waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /**
   * Counters summed over the processes (and, with `times`, every subscribe time since the
   * storm), and each process's CPU time and longest event-loop delay since its last status.
   */
  async status(
    times = false,
    { timeoutMs = 60_000, onLate }: { timeoutMs?: number; onLate?: (missing: number[], waitedMs: number) => void } = {},
  ): Promise<{ counters: Counters; subscribeTimes: number[]; cpuMs: number[]; loopDelayMaxMs: number[] }> {
    this.send({ type: 'status', times });
    const replies = await this.gather('status', timeoutMs, onLate);
    const counters: Counters = emptyCounters();
    for (const { counters: c } of replies) {
      counters.subscribed += c.subscribed;
      counters.retried += c.retried;
      counters.attempts += c.attempts;
      counters.pings += c.pings;
      for (const [k, v] of Object.entries(c.closes)) counters.closes[k] = (counters.closes[k] ?? 0) + v;
      for (const [k, v] of Object.entries(c.failures)) counters.failures[k] = (counters.failures[k] ?? 0) + v;
      for (const [k, v] of Object.entries(c.abnormal)) counters.abnormal[k] = (counters.abnormal[k] ?? 0) + v;
    }
    return {
      counters,
      subscribeTimes: replies.flatMap((r) => r.subscribeTimes),
      cpuMs: replies.map((r) => r.cpuMs),
      loopDelayMaxMs: replies.map((r) => r.loopDelayMaxMs),
    };
  }

  async stop(): Promise<void> {
    await Promise.all(
      this.#children.map(async (child) => {
        if (child.exitCode !== null || child.signalCode !== null) return;
        const exited = once(child, 'exit');
        child.send({ type: 'close' } satisfies ToLoad);
        const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
        await exited;
        clearTimeout(timer);
      }),
    );
  }
}
