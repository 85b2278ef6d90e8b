/**
 * The connections benchmark: one gateway node holds `connections` WebSocket connections, each
 * subscribed to `prices` anonymously, heartbeat on, opened from this machine by several load
 * processes over several loopback source addresses. What it measures, in order:
 *
 * 1. the node's idle CPU and RSS with no socket, then the initial open (at most
 *    `openConcurrency` upgrades in flight per load process): time to accept and subscribe all,
 *    the mean and the peak accept rate;
 * 2. RSS per connection: the node's RSS (every process of it summed) after the open, minus before;
 * 3. `ticks` single price ticks, each published once to Redis and stamped on arrival at every
 *    socket: first, p50, p99 and last receipt after the publish (one monotonic clock);
 * 4. the heartbeat's CPU: the node's CPU over `idleWindowS` with every socket idle (longer than
 *    one ping interval, so every socket is pinged in it) against the same window at 0 sockets;
 * 5. a busy box: price ticks at `busyRate`/s for `busyWindowS` (longer than the ping interval
 *    plus the pong deadline) while the load processes answer pings late: no socket may close;
 * 6. the reconnect storm: the node is restarted (SIGTERM: every socket closed with 1001), the
 *    clients come back on the SDK's backoff: time until all are subscribed again, the peak
 *    accept rate, and every failed upgrade retried.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { loadavg } from 'node:os';
import { connectRedisBroker, createEventPublisher } from '@repo/broker';
import { monoMs, sleep } from '../lib/clock.ts';
import { freePort } from '../lib/free-port.ts';
import { processRssBytes } from '../lib/proc-stat.ts';
import { percentile } from '../lib/stats.ts';
import { priceForSeq } from '../load/shared-state.ts';
import { createScratchDatabase } from '../lib/scratch-database.ts';
import { GatewayNode } from './gateway-node.ts';
import { LoadFleet } from './load-fleet.ts';
import type { Counters, LoadConfig } from './messages.ts';

export interface ConnectionsParams {
  connections: number;
  /** Load processes (each holds connections / processes sockets). */
  processes: number;
  /** `WS_WORKERS` of the node; 0 = one process. */
  workers: number;
  /** Sockets per loopback source address, at most (each has ~28,000 ephemeral ports). */
  perAddress: number;
  openConcurrency: number;
  ticks: number;
  idleWindowS: number;
  busyWindowS: number;
  busyRate: number;
}

export const CONNECTIONS_DEFAULTS: ConnectionsParams = {
  connections: 100_000,
  processes: 7,
  workers: 8,
  perAddress: 10_000,
  openConcurrency: 128,
  ticks: 5,
  idleWindowS: 30,
  busyWindowS: 40,
  busyRate: 2,
};

export interface Latency {
  seq: number;
  received: number;
  missing: number;
  first: number;
  p50: number;
  p99: number;
  last: number;
}

export interface ConnectionsResult {
  params: ConnectionsParams;
  startedAt: string;
  loadAverage: number;
  nodeProcesses: number;
  rssBeforeBytes: number;
  rssAfterBytes: number;
  rssPerConnection: number;
  loadRssBytes: number;
  openMs: number;
  openRate: number;
  openPeakRate: number;
  openCounters: Counters;
  ticks: Latency[];
  idleCpuPctAtZero: number;
  idleCpuPct: number;
  heartbeatCpuUsPerPing: number | null;
  pingsInIdleWindow: number;
  busy: { ticks: number; boxCpuPct: number; closes: Record<string, number>; subscribedAfter: number };
  storm: {
    restartMs: number;
    allBackMs: number;
    peakRate: number;
    counters: Counters;
    /** Clients subscribed when the storm's wait ended (all, unless it timed out). */
    subscribedAtEnd: number;
    unretried: number;
  };
}

type Log = (line: string) => void;

const LOOP_DELAY_HOOK = fileURLToPath(new URL('./loop-delay-hook.ts', import.meta.url));
const PING_STAMP_HOOK = fileURLToPath(new URL('./ping-stamp-hook.ts', import.meta.url));

/** Longest wait for every client to be back after the restart. */
const STORM_TIMEOUT_MS = 480_000;
/** The storm's progress is logged this often. */
const STORM_LOG_EVERY_MS = 5000;

export async function runConnections(
  params: ConnectionsParams,
  redisUrl: string,
  log: Log,
  { ticksOnly = false }: { ticksOnly?: boolean } = {},
): Promise<ConnectionsResult> {
  const database = await createScratchDatabase('bench_conn');
  const node = new GatewayNode({
    port: await freePort(),
    redisUrl,
    databaseUrl: database.url,
    workers: params.workers,
    maxConnections: params.connections + 1000,
    // Each node process's event-loop delay, for the storm log (a timer every 5 s), and the send
    // time in every heartbeat ping, so a client can tell how late a ping reached it.
    nodeFlags: ['--import', LOOP_DELAY_HOOK, '--import', PING_STAMP_HOOK],
  });
  const broker = await connectRedisBroker(redisUrl);
  const events = createEventPublisher(broker);
  let fleet: LoadFleet | undefined;
  try {
    await node.start();
    log(`gateway node up: ${node.processes().length} processes (WS_WORKERS=${params.workers || 'unset'})`);
    await sleep(3000);
    const idleAtZero = await cpuOver(node, 10_000);
    const rssBefore = node.rssBytes();

    fleet = await LoadFleet.start(loadConfigs(params, node.options.port));
    const loaders = fleet;
    log(`${params.processes} load processes ready; opening ${params.connections} sockets`);
    loaders.send({ type: 'open' });
    let openDone = false;
    const opening = loaders.gather('opened', 900_000).finally(() => {
      openDone = true;
    });
    while (!openDone) {
      await Promise.race([opening.catch(() => {}), sleep(15_000)]);
      if (openDone) continue;
      const { subscribed, failures, closes } = (await loaders.status()).counters;
      log(`opening: ${subscribed} subscribed, failures ${JSON.stringify(failures)}, closes ${JSON.stringify(closes)}`);
    }
    const opened = await opening;
    const openStart = Math.min(...opened.map((o) => o.startedAt));
    const openTimes = opened.flatMap((o) => o.times);
    const openMs = latest(openTimes) - openStart;
    const openCounters = (await loaders.status()).counters;
    log(
      `opened ${openTimes.length} in ${(openMs / 1000).toFixed(1)} s ` +
        `(${Math.round(openTimes.length / (openMs / 1000))}/s); ` +
        `failures ${JSON.stringify(openCounters.failures)}`,
    );

    await sleep(5000);
    const rssAfter = node.rssBytes();
    const loadRss = loaders.pids.reduce((sum, pid) => sum + processRssBytes(pid), 0);
    log(
      `node RSS ${mib(rssBefore)} → ${mib(rssAfter)} MiB: ` +
        `${Math.round((rssAfter - rssBefore) / params.connections)} B/connection`,
    );

    const ticks: Latency[] = [];
    for (let i = 1; i <= params.ticks; i++) {
      const seq = 1_000_000 + i;
      loaders.send({ type: 'expect', seq });
      const loadCpuBefore = (await loaders.status()).cpuMs;
      const nodeCpuBefore = node.cpuMicros();
      const boxBefore = boxCpu();
      const publishedAt = monoMs();
      await events.publishPriceUpdate('SOL', priceForSeq(seq));
      await sleep(4000);
      // Where the tick's CPU went (the heartbeat's background included): whose work the p99 waits for.
      const nodeCpuMs = (node.cpuMicros() - nodeCpuBefore) / 1000;
      const loadCpuMs = sum((await loaders.status()).cpuMs) - sum(loadCpuBefore);
      const boxBusyPct = boxCpu().busyPctSince(boxBefore);
      loaders.send({ type: 'collect' });
      const receipts = await loaders.gather('receipts', 60_000);
      const latencies = receipts.flatMap((r) => r.times.map((t) => t - publishedAt)).sort((a, b) => a - b);
      const missing = receipts.reduce((sum, r) => sum + r.missing, 0);
      const tick: Latency = {
        seq,
        received: latencies.length,
        missing,
        first: latencies[0] ?? Number.NaN,
        p50: percentile(latencies, 50),
        p99:
          missing > latencies.length / 100 ? Number.POSITIVE_INFINITY : percentile(withMissing(latencies, missing), 99),
        last: missing > 0 ? Number.POSITIVE_INFINITY : (latencies.at(-1) ?? Number.NaN),
      };
      ticks.push(tick);
      log(
        `tick ${i} (published at ${publishedAt.toFixed(0)} on monoMs): ` +
          `first ${tick.first.toFixed(1)} ms, p50 ${tick.p50.toFixed(1)} ms, p99 ${tick.p99.toFixed(1)} ms, ` +
          `last ${tick.last.toFixed(1)} ms, missing ${missing}; in the 4 s after the publish: node CPU ` +
          `${nodeCpuMs.toFixed(0)} ms, load processes ${loadCpuMs.toFixed(0)} ms, box ${boxBusyPct.toFixed(0)} % busy`,
      );
      await sleep(1000);
    }

    const pingsBefore = (await loaders.status()).counters.pings;
    const idle = await cpuOver(node, params.idleWindowS * 1000);
    const pings = (await loaders.status()).counters.pings - pingsBefore;
    const heartbeatCpuUsPerPing =
      pings > 0 ? (((idle.cpuPct - idleAtZero.cpuPct) / 100) * params.idleWindowS * 1e6) / pings : null;
    log(
      `idle: node CPU ${idle.cpuPct.toFixed(2)} % with every socket open (${idleAtZero.cpuPct.toFixed(2)} % at 0), ` +
        `${pings} pings answered in ${params.idleWindowS} s`,
    );

    const closesBefore = (await loaders.status()).counters.closes;
    const boxBefore = boxCpu();
    const busyEnd = monoMs() + params.busyWindowS * 1000;
    let busyTicks = 0;
    while (monoMs() < busyEnd) {
      busyTicks += 1;
      await events.publishPriceUpdate('SOL', priceForSeq(2_000_000 + busyTicks));
      await sleep(1000 / params.busyRate);
    }
    await sleep(2000);
    const boxCpuPct = boxCpu().busyPctSince(boxBefore);
    const afterBusy = await loaders.status();
    const busyCloses = diff(afterBusy.counters.closes, closesBefore);
    log(
      `busy: ${busyTicks} ticks in ${params.busyWindowS} s, box CPU ${boxCpuPct.toFixed(0)} %, ` +
        `closes ${JSON.stringify(busyCloses)}, subscribed ${afterBusy.counters.subscribed}`,
    );

    const partial = {
      params,
      nodeProcesses: node.processes().length,
      rssBeforeBytes: rssBefore,
      rssAfterBytes: rssAfter,
      rssPerConnection: Math.round((rssAfter - rssBefore) / params.connections),
      loadRssBytes: loadRss,
      openMs,
      openRate: Math.round(openTimes.length / (openMs / 1000)),
      openPeakRate: peakPerSecond(openTimes),
      openCounters,
      ticks,
      idleCpuPctAtZero: idleAtZero.cpuPct,
      idleCpuPct: idle.cpuPct,
      heartbeatCpuUsPerPing,
      pingsInIdleWindow: pings,
      busy: { ticks: busyTicks, boxCpuPct, closes: busyCloses, subscribedAfter: afterBusy.counters.subscribed },
    };
    if (ticksOnly) {
      const none = Number.NaN;
      return {
        ...partial,
        startedAt: new Date().toISOString(),
        loadAverage: loadavg()[0] ?? 0,
        storm: {
          restartMs: none,
          allBackMs: none,
          peakRate: none,
          counters: afterBusy.counters,
          subscribedAtEnd: none,
          unretried: none,
        },
      };
    }

    loaders.send({ type: 'storm' });
    await loaders.status();
    const stormStart = monoMs();
    await node.stop();
    const stoppedMs = monoMs() - stormStart;
    await node.start();
    const restartMs = monoMs() - stormStart;
    log(`storm: node stopped in ${(stoppedMs / 1000).toFixed(1)} s, up again after ${(restartMs / 1000).toFixed(1)} s`);
    // Slow on a shared machine, but never endless: a storm that has not settled by then is
    // reported as such, with how many came back.
    const stormDeadline = monoMs() + STORM_TIMEOUT_MS;
    // A load process starved by the storm may answer late: wait for it until the deadline,
    // saying which one is silent, rather than give the storm up.
    const stormStatus = (times = false) =>
      loaders.status(times, {
        timeoutMs: Math.max(60_000, stormDeadline - monoMs()),
        onLate: (missing, waitedMs) =>
          log(
            `storm: load process(es) ${missing.join(', ')} silent for ${(waitedMs / 1000).toFixed(0)} s; ` +
              `open fds ${node.openFds().join(' ')}`,
          ),
      });
    let storm = await stormStatus();
    let lastLogAt = monoMs();
    let lastLogged = storm.counters;
    let lastCpuMs = storm.cpuMs;
    // Each status reports the longest loop delay since the one before: kept here until logged.
    let loopDelayMaxMs = storm.loopDelayMaxMs;
    let lastNodeCounts = await nodeCounts(node.options.port);
    let lastOverflows = listenOverflows();
    while (storm.counters.subscribed < params.connections && monoMs() < stormDeadline) {
      await sleep(1000);
      storm = await stormStatus();
      loopDelayMaxMs = loopDelayMaxMs.map((ms, i) => Math.max(ms, storm.loopDelayMaxMs[i]!));
      if (monoMs() - lastLogAt >= STORM_LOG_EVERY_MS) {
        // Per-interval attempts and failures, and the node's worker exits: what tells a crash
        // from a slow primary from congestion (see the storm paragraph of the report).
        const seconds = (monoMs() - lastLogAt) / 1000;
        const c = storm.counters;
        const nodeNow = await nodeCounts(node.options.port);
        const loadCpuPct = storm.cpuMs.map((ms, i) => Math.round(((ms - lastCpuMs[i]!) / (seconds * 1000)) * 100));
        log(
          `storm +${((monoMs() - stormStart) / 1000).toFixed(0)} s: ${c.subscribed} subscribed, ` +
            `${Math.round((c.attempts - lastLogged.attempts) / seconds)} attempts/s, ` +
            `failures ${JSON.stringify(diff(c.failures, lastLogged.failures))}, ` +
            `closes ${JSON.stringify(diff(c.closes, lastLogged.closes))} ` +
            `(1006 of subscribed: ${JSON.stringify(diff(c.abnormal, lastLogged.abnormal))}), ` +
            `worker exits so far ${node.workerExits}, open fds ${node.openFds().join(' ')}; ` +
            `load CPU % ${loadCpuPct.join(' ')}, ` +
            `loop delay max ms ${loopDelayMaxMs.join(' ')} (node ${node.takeLoopDelays().join(' ')}); ` +
            `node closed ${JSON.stringify(diff(nodeNow, lastNodeCounts))}, ` +
            `listen queue overflows ${listenOverflows() - lastOverflows}`,
        );
        lastOverflows = listenOverflows();
        lastLogAt = monoMs();
        lastLogged = c;
        lastCpuMs = storm.cpuMs;
        loopDelayMaxMs = storm.loopDelayMaxMs.map(() => 0);
        if (Object.keys(nodeNow).length > 0) lastNodeCounts = nodeNow;
      }
    }
    storm = await stormStatus(true);
    const allBack = storm.counters.subscribed >= params.connections;
    const allBackMs = allBack ? latest(storm.subscribeTimes) - stormStart : Number.POSITIVE_INFINITY;
    const failed = Object.values(storm.counters.failures).reduce((a, b) => a + b, 0);
    log(
      `storm: ${storm.counters.subscribed} of ${params.connections} subscribed again ` +
        `${((monoMs() - stormStart) / 1000).toFixed(1)} s after the restart began` +
        `${allBack ? ` (the last at ${(allBackMs / 1000).toFixed(1)} s)` : ' (timed out)'}; ` +
        `peak ${peakPerSecond(storm.subscribeTimes)}/s; failures ${JSON.stringify(storm.counters.failures)}, ` +
        `retried ${storm.counters.retried}`,
    );

    return {
      ...partial,
      startedAt: new Date().toISOString(),
      loadAverage: loadavg()[0] ?? 0,
      storm: {
        restartMs,
        allBackMs,
        peakRate: peakPerSecond(storm.subscribeTimes),
        counters: storm.counters,
        subscribedAtEnd: storm.counters.subscribed,
        unretried: failed - storm.counters.retried,
      },
    };
  } finally {
    await fleet?.stop();
    await node.stop();
    await broker.close().catch(() => {});
    await database.drop().catch((err: unknown) => log(`could not drop the database: ${String(err)}`));
  }
}

/** The load processes' configs: clients split evenly, each process on source addresses of its own. */
export function loadConfigs(params: ConnectionsParams, port: number): LoadConfig[] {
  return Array.from({ length: params.processes }, (_, i) => {
    const clients =
      Math.floor(params.connections / params.processes) + (i < params.connections % params.processes ? 1 : 0);
    const count = Math.ceil(clients / params.perAddress);
    return {
      host: '127.0.0.1',
      port,
      addresses: Array.from({ length: count }, (_, a) => `127.0.${i + 1}.${a + 1}`),
      clients,
      openConcurrency: params.openConcurrency,
    };
  });
}

/** The node's CPU over `ms`, as a percentage of one core. */
async function cpuOver(node: GatewayNode, ms: number): Promise<{ cpuPct: number }> {
  const before = node.cpuMicros();
  const started = monoMs();
  await sleep(ms);
  const used = node.cpuMicros() - before;
  return { cpuPct: (used / ((monoMs() - started) * 1000)) * 100 };
}

/** The whole machine's busy share from /proc/stat, as a percentage of all its cores. */
function boxCpu(): { busyPctSince(earlier: ReturnType<typeof boxCpu>): number; idle: number; total: number } {
  const fields = processStatLine();
  const idle = fields[3]! + fields[4]!;
  const total = fields.reduce((a, b) => a + b, 0);
  return {
    idle,
    total,
    busyPctSince: (earlier) => (1 - (idle - earlier.idle) / (total - earlier.total)) * 100,
  };
}

function processStatLine(): number[] {
  // The first line of /proc/stat: "cpu  user nice system idle iowait irq softirq steal …".
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0]!;
  return line.trim().split(/\s+/).slice(1).map(Number);
}

function withMissing(sorted: number[], missing: number): number[] {
  return missing === 0 ? sorted : [...sorted, ...Array<number>(missing).fill(Number.POSITIVE_INFINITY)];
}

function sum(values: number[]): number {
  return values.reduce((a, b) => a + b, 0);
}

/** The latest of many times (too many to spread into Math.max's arguments). */
function latest(times: number[]): number {
  let max = Number.NEGATIVE_INFINITY;
  for (const t of times) if (t > max) max = t;
  return max;
}

/** The most subscribes that fell into one second. */
function peakPerSecond(times: number[]): number {
  if (times.length === 0) return 0;
  const bins = new Map<number, number>();
  for (const t of times) bins.set(Math.floor(t / 1000), (bins.get(Math.floor(t / 1000)) ?? 0) + 1);
  return Math.max(...bins.values());
}

/**
 * The machine's count of connections the kernel dropped because a listener's accept queue was
 * full (`TcpExtListenOverflows`): a client whose SYN is dropped waits for its retransmission.
 */
function listenOverflows(): number {
  const lines = readFileSync('/proc/net/netstat', 'utf8').split('\n');
  const at = lines.findIndex((line) => line.startsWith('TcpExt:'));
  const names = lines[at]?.split(' ') ?? [];
  const values = lines[at + 1]?.split(' ') ?? [];
  return Number(values[names.indexOf('ListenOverflows')] ?? 0);
}

/**
 * The node's own count of what it closed, from its `/metrics` (aggregated over the workers):
 * `disconnect:<reason>` and `shed:<reason>`. Empty when the node does not answer in 3 s.
 */
async function nodeCounts(port: number): Promise<Record<string, number>> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}/metrics`, { signal: AbortSignal.timeout(3000) });
    const counts: Record<string, number> = {};
    const pattern = /^tradewire_ws_(disconnects|connections_shed)_total\{reason="([^"]+)"\} (\d+)/gm;
    for (const [, metric, reason, value] of (await res.text()).matchAll(pattern)) {
      counts[`${metric === 'disconnects' ? 'disconnect' : 'shed'}:${reason}`] = Number(value);
    }
    return counts;
  } catch {
    return {};
  }
}

function diff(after: Record<string, number>, before: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(after)) if (v - (before[k] ?? 0) > 0) out[k] = v - (before[k] ?? 0);
  return out;
}

const mib = (bytes: number) => (bytes / 2 ** 20).toFixed(0);
