import { EventEmitter } from 'node:events';
import { Worker } from 'node:worker_threads';
import { fastMonoClock, monoMs, sleep } from '../lib/clock.ts';
import { processCpuMicros, runQueueWaitMs } from '../lib/proc-stat.ts';
import { msOrNull, round2, summariseLatencies } from '../lib/stats.ts';
import { readUsersFile } from '../servers/sessions.ts';
import { openFleet, type Inbox, type TargetServer } from './fleet.ts';
import { RawWsClient } from './raw-ws-client.ts';
import type { PublisherCommand, PublisherConfig, PublisherEvent, PublishRun } from './publisher-worker.ts';
import { SelfWatch, type GeneratorHealth } from './self-watch.ts';
import { settle, signalWindow } from './window-signal.ts';
import type { ServerWindowStats } from '../servers/control.ts';
import { CAPACITY, CTL, createSharedBuffers, viewShared, type SharedState } from './shared-state.ts';

export interface Common {
  target: TargetServer;
  redisUrl: string;
  /** PID of the server under test, for its CPU time. */
  serverPid: number;
}

export interface ThroughputSpec extends Common {
  scenario: 'throughput';
  clients: number;
  /** Events in flight ahead of the slowest client. */
  window: number;
  warmupMs: number;
  measureMs: number;
  /**
   * JSON protocol only: ticks go round these symbols and client i subscribes to symbol i mod n
   * alone (`"symbols":[…]`), so each tick has 1/n of the clients. Unset: SOL to every client.
   */
  symbols?: string[];
}

export interface LatencySpec extends Common {
  scenario: 'latency';
  clients: number;
  rates: number[];
  warmupS: number;
  measureS: number;
  /**
   * Fewest measured events per step: at 10/s, 4 s is 40 events, and one late event (its 1,000
   * deliveries are 2.5% of the samples) would decide the p99 alone.
   */
  minEvents?: number;
  /** How long to wait for a step's backlog to drain before the next step. */
  drainTimeoutMs: number;
  /**
   * Past the knee: the ladder stops after two steps in a row with p99 at or above this (ms), or
   * one at 10× it (a server buried under its backlog). Unset: it climbs to the last rate.
   */
  stopAboveP99Ms?: number;
}

export interface PrivateSpec extends Common {
  scenario: 'private';
  usersFile: string;
  users: number;
  rate: number;
  warmupS: number;
  measureS: number;
}

export interface IdleSpec extends Common {
  scenario: 'idle';
  clients: number;
}

export type LoadSpec = ThroughputSpec | LatencySpec | PrivateSpec | IdleSpec;

export interface ThroughputResult {
  deliveriesPerSec: number;
  /** Server CPU (all its threads) per delivered message, µs. */
  serverCpuUsPerDelivery: number;
  serverCpuPct: number;
  /** Share of the window the server's main thread waited for its CPU (other processes), %. */
  serverWaitPct: number;
  events: number;
  deliveries: number;
  lost: number;
  duplicated: number;
  disconnected: number;
  generator: GeneratorHealth;
  /** The server's own event loop and GC over the window (added by the runner). */
  server?: ServerWindowStats;
}

/**
 * Latencies are in ms. null means "never": some expected deliveries did not arrive, and the
 * percentile falls among them.
 */
export interface LatencyStep {
  rate: number;
  p50: number | null;
  p99: number | null;
  max: number | null;
  expected: number;
  delivered: number;
  lost: number;
  duplicated: number;
  disconnected: number;
  serverCpuPct: number;
  serverWaitPct: number;
  drained: boolean;
  generator: GeneratorHealth;
  server?: ServerWindowStats;
}

export interface PrivateResult {
  users: number;
  rate: number;
  p50: number | null;
  p99: number | null;
  max: number | null;
  expected: number;
  delivered: number;
  wrongUser: number;
  lost: number;
  duplicated: number;
  disconnected: number;
  serverWaitPct: number;
  generator: GeneratorHealth;
  server?: ServerWindowStats;
}

const TSX_API = import.meta.resolve('tsx/esm/api');
const PUBLISHER_ENTRY = new URL('./publisher-worker.ts', import.meta.url).href;

/** The publisher thread, seen from the receiving thread. */
export class PublisherThread {
  readonly #worker: Worker;
  readonly #events = new EventEmitter();
  readonly #failed: Promise<never>;
  readonly #ready: Promise<unknown>;

  constructor(config: PublisherConfig) {
    // A worker thread does not inherit tsx's loader hooks: the thread registers them itself,
    // then imports the TypeScript entry.
    const bootstrap =
      `import(${JSON.stringify(TSX_API)}).then((tsx) => { tsx.register(); ` +
      `return import(${JSON.stringify(PUBLISHER_ENTRY)}); })`;
    this.#worker = new Worker(bootstrap, { eval: true, workerData: config });
    this.#worker.on('message', (event: PublisherEvent) => this.#events.emit(event.type, event));
    this.#failed = new Promise<never>((_, reject) => {
      this.#worker.once('error', reject);
      this.#worker.once('exit', (code) => reject(new Error(`publisher thread exited with ${code}`)));
    });
    this.#failed.catch(() => {});
    // Listen from the start: the thread may be ready long before the clients are.
    this.#ready = this.#next('ready');
    this.#ready.catch(() => {});
  }

  #next<T extends PublisherEvent['type']>(type: T): Promise<Extract<PublisherEvent, { type: T }>> {
    return Promise.race([
      new Promise<Extract<PublisherEvent, { type: T }>>((resolve) => this.#events.once(type, resolve)),
      this.#failed,
    ]);
  }

  /** Resolves once the thread has loaded and connected to Redis (this takes seconds under tsx). */
  ready(): Promise<unknown> {
    return this.#ready;
  }

  /** Runs `run`; resolves with the last seq published. */
  async run(run: PublishRun): Promise<number> {
    const done = this.#next('done');
    this.#worker.postMessage({ type: 'run', run } satisfies PublisherCommand);
    return (await done).published;
  }

  /** The window moved, or the stop flag is set. */
  wake = (): void => {
    this.#worker.postMessage({ type: 'wake' } satisfies PublisherCommand);
  };

  async close(): Promise<void> {
    const closed = this.#next('closed').catch(() => {});
    this.#worker.postMessage({ type: 'close' } satisfies PublisherCommand);
    await Promise.race([closed, sleep(2000)]);
    await this.#worker.terminate();
  }
}

/**
 * Per-client bookkeeping for broadcast scenarios. Price ticks from one publisher arrive in order
 * on each connection, so one "last seq" per client detects both gaps (lost or conflated ticks)
 * and repeats (duplicates) in O(1) memory.
 */
export class BroadcastTracker implements Inbox {
  readonly lastSeq: Int32Array;
  deliveries = 0;
  gaps = 0;
  duplicated = 0;
  disconnected = 0;
  closing = false;
  /** Latencies (ms) of deliveries with seq in [measureFrom, measureTo]. */
  samples: Float64Array = new Float64Array(0);
  sampleCount = 0;
  measureFrom = Number.POSITIVE_INFINITY;
  measureTo = 0;
  readonly #shared: SharedState;
  readonly #now = fastMonoClock();
  #sinceWindowUpdate = 0;
  /** Called when the slowest client moved (window mode wakes the publisher with it). */
  onWindowMove: () => void = () => {};

  /** Seqs between two ticks a client takes: n when the ticks go round n symbols and it takes one. */
  readonly #stride: number;

  constructor(clients: number, shared: SharedState, stride = 1) {
    this.lastSeq = new Int32Array(clients);
    this.#shared = shared;
    this.#stride = stride;
  }

  onPrice(client: number, seq: number): void {
    this.deliveries++;
    const last = this.lastSeq[client]!;
    if (seq <= last) {
      this.duplicated++;
      return;
    }
    if (last !== 0 && seq > last + this.#stride) this.gaps += Math.floor((seq - last) / this.#stride) - 1;
    this.lastSeq[client] = seq;
    if (seq >= this.measureFrom && seq <= this.measureTo && this.sampleCount < this.samples.length) {
      this.samples[this.sampleCount++] = this.#now() - this.#shared.sendTimes[seq % CAPACITY]!;
    }
    if (++this.#sinceWindowUpdate >= 256) this.updateWindow();
  }

  onOrder(): void {}

  onClose(): void {
    if (!this.closing) this.disconnected++;
  }

  minSeq(): number {
    let min = Number.POSITIVE_INFINITY;
    for (const seq of this.lastSeq) if (seq < min) min = seq;
    return min;
  }

  /** Publishes the slowest client's position to the publisher thread (window mode). */
  updateWindow(): void {
    this.#sinceWindowUpdate = 0;
    const min = this.minSeq();
    if (Atomics.load(this.#shared.control, CTL.minReceived) !== min) {
      Atomics.store(this.#shared.control, CTL.minReceived, min);
      this.onWindowMove();
    }
  }

  /** Ticks never received by the end: gaps plus each client's missing tail. */
  lost(lastPublished: number): number {
    let tails = 0;
    for (const seq of this.lastSeq) tails += Math.max(0, Math.floor((lastPublished - seq) / this.#stride));
    return this.gaps + tails;
  }

  /** Waits until every client has `seq`, or no client made progress for `stallMs`, or `timeoutMs`. */
  async drain(seq: number, timeoutMs: number, stallMs = 3000): Promise<boolean> {
    const deadline = monoMs() + timeoutMs;
    let lastProgress = monoMs();
    let lastDeliveries = this.deliveries;
    for (;;) {
      if (this.minSeq() >= seq) return true;
      const now = monoMs();
      if (this.deliveries !== lastDeliveries) {
        lastDeliveries = this.deliveries;
        lastProgress = now;
      }
      if (now > deadline || now - lastProgress > stallMs) return false;
      await sleep(10);
    }
  }
}

export const via = (target: TargetServer): 'socketio' | 'contract' =>
  target.protocol === 'socketio' ? 'socketio' : 'contract';

export async function runThroughput(spec: ThroughputSpec): Promise<ThroughputResult> {
  const buffers = createSharedBuffers();
  const shared = viewShared(buffers);
  const symbols = spec.symbols;
  const stride = symbols?.length ?? 1;
  const tracker = new BroadcastTracker(spec.clients, shared, stride);
  const publisher = new PublisherThread({
    redisUrl: spec.redisUrl,
    via: via(spec.target),
    kind: 'price',
    buffers,
    ...(symbols ? { symbols } : {}),
  });
  const fleet = await openFleet(spec.target, {
    count: spec.clients,
    channel: 'prices',
    inbox: tracker,
    ...(symbols ? { symbolsOf: (client: number) => [symbols[client % symbols.length]!] } : {}),
  }).catch(async (err) => {
    await publisher.close();
    throw err;
  });
  const windowTimer = setInterval(() => tracker.updateWindow(), 2);
  const debugTimer = process.env.BENCH_DEBUG
    ? setInterval(() => {
        process.stderr.write(
          `throughput: deliveries=${tracker.deliveries} min=${tracker.minSeq()} ` +
            `published=${Atomics.load(shared.control, CTL.published)}\n`,
        );
      }, 1000)
    : undefined;
  try {
    await publisher.ready();
    await settle();
    tracker.onWindowMove = publisher.wake;
    const published = publisher.run({ mode: 'window', window: spec.window, firstSeq: 1 });
    await sleep(spec.warmupMs);
    signalWindow('start');
    const watch = new SelfWatch();
    watch.start();
    const d0 = tracker.deliveries;
    const e0 = Atomics.load(shared.control, CTL.published);
    const c0 = processCpuMicros(spec.serverPid);
    const w0 = runQueueWaitMs(spec.serverPid);
    const t0 = monoMs();
    await sleep(spec.measureMs);
    const d1 = tracker.deliveries;
    const e1 = Atomics.load(shared.control, CTL.published);
    const c1 = processCpuMicros(spec.serverPid);
    const w1 = runQueueWaitMs(spec.serverPid);
    const t1 = monoMs();
    const generator = watch.stop();
    signalWindow('end');
    Atomics.store(shared.control, CTL.stop, 1);
    publisher.wake();
    const lastPublished = await published;
    // With n symbols a client's last tick is one of the last n published.
    await tracker.drain(lastPublished - stride + 1, 10_000);
    const deliveries = d1 - d0;
    return {
      deliveriesPerSec: Math.round(deliveries / ((t1 - t0) / 1000)),
      serverCpuUsPerDelivery: deliveries > 0 ? round2((c1 - c0) / deliveries) : Number.NaN,
      serverCpuPct: Math.round(((c1 - c0) / 1000 / (t1 - t0)) * 100),
      serverWaitPct: Math.round(((w1 - w0) / (t1 - t0)) * 100),
      events: e1 - e0,
      deliveries,
      lost: tracker.lost(lastPublished),
      duplicated: tracker.duplicated,
      disconnected: tracker.disconnected,
      generator,
    };
  } finally {
    clearInterval(windowTimer);
    clearInterval(debugTimer);
    tracker.closing = true;
    await Promise.all([fleet.close(), publisher.close()]);
  }
}

/** Two steps in a row over `limitMs`, or the last one far over it: higher rates only cost time. */
function pastTheKnee(steps: LatencyStep[], limitMs: number | undefined): boolean {
  if (limitMs === undefined) return false;
  const over = (step: LatencyStep | undefined, factor = 1) =>
    step !== undefined && (step.p99 === null || step.p99 >= limitMs * factor);
  const last = steps.at(-1);
  return over(last, 10) || (over(last) && over(steps.at(-2)));
}

export async function runLatency(spec: LatencySpec): Promise<LatencyStep[]> {
  const buffers = createSharedBuffers();
  const shared = viewShared(buffers);
  const tracker = new BroadcastTracker(spec.clients, shared);
  const publisher = new PublisherThread({ redisUrl: spec.redisUrl, via: via(spec.target), kind: 'price', buffers });
  const fleet = await openFleet(spec.target, { count: spec.clients, channel: 'prices', inbox: tracker }).catch(
    async (err) => {
      await publisher.close();
      throw err;
    },
  );
  const steps: LatencyStep[] = [];
  let firstSeq = 1;
  try {
    await publisher.ready();
    await settle();
    for (const rate of spec.rates) {
      const warmupEvents = Math.round(rate * spec.warmupS);
      const measuredEvents = Math.max(Math.round(rate * spec.measureS), spec.minEvents ?? 0);
      const expected = measuredEvents * spec.clients;
      tracker.measureFrom = firstSeq + warmupEvents;
      tracker.measureTo = firstSeq + warmupEvents + measuredEvents - 1;
      tracker.samples = new Float64Array(expected);
      tracker.sampleCount = 0;
      const lostBefore = tracker.lost(firstSeq - 1);
      const duplicatedBefore = tracker.duplicated;
      const disconnectedBefore = tracker.disconnected;
      const published = publisher.run({ mode: 'rate', rate, warmupEvents, measuredEvents, firstSeq });
      // The measured window opens when the publisher sends the first measured event.
      while (Atomics.load(shared.control, CTL.published) < tracker.measureFrom) await sleep(2);
      signalWindow('start');
      const watch = new SelfWatch();
      watch.start();
      const c0 = processCpuMicros(spec.serverPid);
      const w0 = runQueueWaitMs(spec.serverPid);
      const t0 = monoMs();
      const lastPublished = await published;
      signalWindow('end');
      const drained = await tracker.drain(lastPublished, spec.drainTimeoutMs);
      const c1 = processCpuMicros(spec.serverPid);
      const w1 = runQueueWaitMs(spec.serverPid);
      const t1 = monoMs();
      const generator = watch.stop();
      const summary = summariseLatencies(tracker.samples, tracker.sampleCount, expected);
      steps.push({
        rate,
        p50: msOrNull(summary.p50),
        p99: msOrNull(summary.p99),
        max: msOrNull(summary.max),
        expected,
        delivered: summary.delivered,
        lost: tracker.lost(lastPublished) - lostBefore,
        duplicated: tracker.duplicated - duplicatedBefore,
        disconnected: tracker.disconnected - disconnectedBefore,
        serverCpuPct: Math.round(((c1 - c0) / 1000 / (t1 - t0)) * 100),
        serverWaitPct: Math.round(((w1 - w0) / (t1 - t0)) * 100),
        drained,
        generator,
      });
      firstSeq = lastPublished + 1;
      // A server that could not drain its backlog would carry it into the next rate and make
      // that figure meaningless: stop here; the higher rates count as not sustained.
      if (!drained || tracker.disconnected > 0) break;
      if (pastTheKnee(steps, spec.stopAboveP99Ms)) break;
      await sleep(500);
    }
    return steps;
  } finally {
    tracker.closing = true;
    await Promise.all([fleet.close(), publisher.close()]);
  }
}

export async function runPrivate(spec: PrivateSpec): Promise<PrivateResult> {
  const users = readUsersFile(spec.usersFile, spec.users);
  const buffers = createSharedBuffers();
  const shared = viewShared(buffers);
  const userOf = Int32Array.from(users, (u) => u.userId);
  const counts = new Uint8Array(CAPACITY);
  const warmupEvents = Math.round(spec.rate * spec.warmupS);
  const measuredEvents = Math.round(spec.rate * spec.measureS);
  const measureFrom = 1 + warmupEvents;
  const measureTo = warmupEvents + measuredEvents;
  const samples = new Float64Array(measuredEvents * 2);
  const sampleSeqs = new Int32Array(measuredEvents * 2);
  let sampleCount = 0;
  let wrongUser = 0;
  let disconnected = 0;
  let closing = false;
  const inbox: Inbox = {
    onPrice() {},
    onOrder(client, event) {
      const seq = event.orderId;
      // Wrong user: the event names another user than the socket's own, or is not the one
      // the publisher addressed.
      if (event.userId !== userOf[client] || shared.targets[seq % CAPACITY] !== event.userId) wrongUser++;
      counts[seq % CAPACITY]!++;
      if (seq >= measureFrom && seq <= measureTo && sampleCount < samples.length) {
        sampleSeqs[sampleCount] = seq;
        samples[sampleCount++] = monoMs() - shared.sendTimes[seq % CAPACITY]!;
      }
    },
    onClose() {
      if (!closing) disconnected++;
    },
  };
  const publisher = new PublisherThread({
    redisUrl: spec.redisUrl,
    via: via(spec.target),
    kind: 'order',
    userIds: [...userOf],
    buffers,
  });
  const fleet = await openFleet(spec.target, {
    count: users.length,
    channel: 'orders',
    tokens: users.map((u) => u.token),
    inbox,
  }).catch(async (err) => {
    await publisher.close();
    throw err;
  });
  try {
    await publisher.ready();
    await settle();
    const published = publisher.run({ mode: 'rate', rate: spec.rate, warmupEvents, measuredEvents, firstSeq: 1 });
    while (Atomics.load(shared.control, CTL.published) < measureFrom) await sleep(2);
    signalWindow('start');
    const watch = new SelfWatch();
    watch.start();
    const pingsBefore = RawWsClient.pings.count;
    const w0 = runQueueWaitMs(spec.serverPid);
    const t0 = monoMs();
    const lastPublished = await published;
    signalWindow('end');
    const serverWaitPct = Math.round(((runQueueWaitMs(spec.serverPid) - w0) / (monoMs() - t0)) * 100);
    if (process.env.BENCH_DEBUG)
      process.stderr.write(`private: ${RawWsClient.pings.count - pingsBefore} server pings during the run\n`);
    // Each event has exactly one recipient: wait until every one arrived (or 10 s).
    const deadline = monoMs() + 10_000;
    const allIn = () => {
      for (let seq = 1; seq <= lastPublished; seq++) if (counts[seq % CAPACITY] === 0) return false;
      return true;
    };
    while (!allIn() && monoMs() < deadline) await sleep(20);
    const generator = watch.stop();
    let lost = 0;
    let duplicated = 0;
    for (let seq = 1; seq <= lastPublished; seq++) {
      const n = counts[seq % CAPACITY]!;
      if (n === 0) lost++;
      else duplicated += n - 1;
    }
    if (process.env.BENCH_DEBUG) {
      const bySecond = new Map<number, number[]>();
      for (let i = 0; i < sampleCount; i++) {
        const second = Math.floor(sampleSeqs[i]! / spec.rate);
        if (!bySecond.has(second)) bySecond.set(second, []);
        bySecond.get(second)!.push(samples[i]!);
      }
      for (const [second, values] of bySecond) {
        values.sort((a, b) => a - b);
        process.stderr.write(
          `private: second ${second}: n=${values.length} ` +
            `p50=${values[values.length >> 1]!.toFixed(2)} ` +
            `p99=${values[Math.floor(values.length * 0.99)]!.toFixed(2)} ` +
            `max=${values[values.length - 1]!.toFixed(2)}\n`,
        );
      }
      // The slowest 1% (the events above the p99), with when each was published on the
      // bench's one clock, to line up with the GC pauses both sides log and the server's
      // arrival stamps (BENCH_ARRIVALS).
      const order = Array.from({ length: sampleCount }, (_, i) => i).sort((a, b) => samples[b]! - samples[a]!);
      for (const i of order.slice(0, Math.ceil(sampleCount / 100))) {
        const seq = sampleSeqs[i]!;
        process.stderr.write(
          `private tail: seq ${seq} sent ${shared.sendTimes[seq % CAPACITY]!.toFixed(2)} ` +
            `latency ${samples[i]!.toFixed(2)}\n`,
        );
      }
    }
    const delivered = Math.min(sampleCount, measuredEvents);
    const summary = summariseLatencies(samples, sampleCount, measuredEvents);
    return {
      users: users.length,
      rate: spec.rate,
      p50: msOrNull(summary.p50),
      p99: msOrNull(summary.p99),
      max: msOrNull(summary.max),
      expected: measuredEvents,
      delivered,
      wrongUser,
      lost,
      duplicated,
      disconnected,
      serverWaitPct,
      generator,
    };
  } finally {
    closing = true;
    await Promise.all([fleet.close(), publisher.close()]);
  }
}

/** Opens the idle clients, tells the runner, and keeps them until the runner says so. */
export async function runIdle(
  spec: IdleSpec,
  connected: () => void,
  released: Promise<void>,
): Promise<{ clients: number }> {
  let disconnected = 0;
  let closing = false;
  const fleet = await openFleet(spec.target, {
    count: spec.clients,
    channel: 'prices',
    inbox: {
      onPrice() {},
      onOrder() {},
      onClose() {
        if (!closing) disconnected++;
      },
    },
    concurrency: 200,
  });
  connected();
  await released;
  closing = true;
  await fleet.close();
  if (disconnected > 0) throw new Error(`${disconnected} idle clients were disconnected`);
  return { clients: fleet.size };
}
