/**
 * `npm run bench` — tradewire's gateway against the design's broadcast and Socket.IO 4, in one
 * session, on one machine:
 *
 *   npm run bench                      full run (about 55 min with every part): 3 interleaved repetitions
 *                                      (5 for private routing), writes docs/benchmarks.md and its chart
 *   npm run bench -- --only latency    one part (its block of docs/benchmarks.md is written): latency,
 *                                      symbols, scale (and throughput, private, idle, e2e: no docs)
 *   npm run bench -- --quick           CI mode (<2 min): fan-out throughput, tradewire vs the naive
 *                                      broadcast (exits 1 when tradewire < 2× naive), and orders at
 *                                      200/s on PostgreSQL (exits 1 on an HTTP error or an order event
 *                                      lost, doubled or out of seq order)
 *   npm run bench -- --only orders     the order path only: ladders, pgbench; rewrites its block of docs/benchmarks.md
 *   npm run bench -- --only latency,idle --reps 1       a subset (no docs written)
 *   npm run bench -- --only connections   100,000 sockets on one gateway node (WS_WORKERS=8, ~10 min); rewrites
 *                                      its own block of docs/benchmarks.md (--connections N --workers W: a smaller
 *                                      run, no docs; --workers 0 is one process, at most 18,000 sockets)
 *   npm run bench -- --profile         also profiles the gateway (--cpu-prof) and lists hot spots
 *   npm run bench -- --report bench/results/full-latest.json   rewrites the docs from saved results
 *
 * Placement: each server under test runs alone on CPU 0 (taskset); the load generator, its
 * publisher thread and the benchmark's own redis-server share CPU 1. Every process is started
 * by this runner and stopped by its PID, also on errors and Ctrl-C. The connections part pins
 * nothing: its gateway node's workers and its load processes share both cores.
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type {
  LatencySpec,
  LatencyStep,
  PrivateResult,
  PrivateSpec,
  ThroughputResult,
  ThroughputSpec,
} from './load/scenarios.ts';
import { sleep } from './lib/clock.ts';
import { runConnectionsPart } from './connections/index.ts';
import { runEndToEnd } from './lib/end-to-end.ts';
import { startGenerator, type Generator } from './lib/generator.ts';
import { machineInfo, openFileLimit } from './lib/machine.ts';
import { ROOT, setNiceness, stopAll } from './lib/processes.ts';
import { hotSpots } from './lib/profile-summary.ts';
import { startRedis } from './lib/redis-server.ts';
import { writePartReports } from './lib/part-reports.ts';
import { recordRun } from './lib/record.ts';
import { LATENCY_TARGET_MS, writeReport } from './lib/report.ts';
import { runScale } from './lib/scale.ts';
import type { BenchResults, IdleResult, Parameters, RunRecord } from './lib/results.ts';
import type { ServerWindowStats } from './servers/control.ts';
import { SERVERS, startServer, tradewireAvailable, type RunningServer, type ServerName } from './lib/servers.ts';
import { median } from './lib/stats.ts';
import { createScratchDatabase, type ScratchDatabase } from './lib/scratch-database.ts';
import { syntheticUsers, seedUsers, writeUsers } from './seed-users.ts';
import { writeOrdersReport } from './orders/report.ts';
import {
  ORDERS_FULL,
  ORDERS_QUICK,
  ordersQuickVerdict,
  runOrdersPart,
  type OrdersParams,
  type OrdersResults,
} from './orders/run-orders.ts';

const SERVER_CORE = 0;
/** The symbols scenario: ticks go round these, each client takes one. */
const SPLIT_SYMBOLS = ['SOL', 'BTC', 'ETH'];
const GENERATOR_CORE = 1;
const RESULTS_DIR = join(ROOT, 'bench/results');
const QUICK_MIN_RATIO = 2;
/** Nice value of every benchmark process unless `--no-priority`. */
const NICENESS = -10;

const FULL: Parameters = {
  reps: 3,
  throughput: { clients: 1000, window: 64, warmupMs: 2000, measureMs: 5000 },
  latency: {
    clients: 1000,
    rates: [10, 25, 50, 100, 200, 400, 600, 800, 1000, 1500, 2000],
    warmupS: 1,
    measureS: 4,
    minEvents: 150,
    drainTimeoutMs: 20_000,
    stopAboveP99Ms: LATENCY_TARGET_MS,
  },
  private: { users: [1000, 10_000], rate: 500, warmupS: 2, measureS: 15, reps: 5 },
  idle: { clients: 10_000, settleMs: 2000 },
  e2e: { rate: 100, users: 200, warmupS: 2, measureS: 10 },
  scale: {
    workers: [1, 2],
    reps: 3,
    gateways: 4,
    partitions: 16,
    partitionUsers: 1000,
    partitionRate: 500,
    partitionMeasureS: 5,
  },
};

const QUICK: Parameters = {
  ...FULL,
  throughput: { clients: 1000, window: 64, warmupMs: 1000, measureMs: 3000 },
};

type Scenario = 'throughput' | 'latency' | 'private' | 'idle' | 'e2e' | 'symbols' | 'scale' | 'connections' | 'orders';
const SCENARIOS: Scenario[] = [
  'throughput',
  'latency',
  'private',
  'idle',
  'e2e',
  'symbols',
  'scale',
  'connections',
  'orders',
];

function log(line: string): void {
  process.stdout.write(`${new Date().toISOString().slice(11, 19)} ${line}\n`);
}

const fmt = (n: number | null | undefined, digits = 0) =>
  n === null || n === undefined || Number.isNaN(n)
    ? '—'
    : n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });

// ---- one run of each scenario -------------------------------------------------------------

interface Context {
  params: Parameters;
  redisUrl: string;
  usersFile: string | undefined;
  databaseUrl: string | undefined;
  /** Profile the server over the measured window into this `.cpuprofile` (`--profile`). */
  profileFile?: string;
  /** Which client drives Socket.IO (`--socketio-client`). */
  socketIoClient: 'lean' | 'official';
}

/**
 * Starts the server and a load generator (in parallel: both take seconds to boot), runs `body`,
 * stops both. Each measured window the generator reports is mirrored on the server, which
 * watches its own event loop and GC over it (and is profiled over it with `--profile`);
 * `body` gets those stats, one per window, in order.
 */
async function withServer<T>(
  name: ServerName,
  ctx: Context,
  body: (
    server: RunningServer,
    generator: Generator,
    windows: () => Promise<(ServerWindowStats | undefined)[]>,
  ) => Promise<T>,
): Promise<T> {
  const generator = startGenerator(GENERATOR_CORE);
  let server: RunningServer | undefined;
  try {
    server = await startServer(SERVERS[name], {
      core: SERVER_CORE,
      redisUrl: ctx.redisUrl,
      usersFile: ctx.usersFile,
      databaseUrl: ctx.databaseUrl,
    });
    const running = server;
    // Best effort: a server buried under a backlog answers late or never; its figures stand
    // without these stats.
    const stats: Promise<ServerWindowStats | undefined>[] = [];
    const watched: Generator = {
      stop: () => generator.stop(),
      run: (spec, options) =>
        generator.run(spec, {
          ...options,
          onWindow: (phase) => {
            if (phase === 'start') running.windowStart(ctx.profileFile !== undefined);
            else {
              stats.push(running.windowEnd(ctx.profileFile).catch(() => undefined));
            }
          },
          // Two full GCs on the server (its memory reading does them) before the window.
          onSettle: async () => {
            await running.memory();
          },
        }),
    };
    return await body(server, watched, () => Promise.all(stats));
  } finally {
    await generator.stop();
    await server?.stop();
  }
}

function common(server: RunningServer, ctx: Context) {
  const target =
    server.def.protocol === 'socketio' ? { ...server.target, socketIoClient: ctx.socketIoClient } : server.target;
  return { target, redisUrl: ctx.redisUrl, serverPid: server.proc.pid };
}

function runThroughput(name: ServerName, ctx: Context, symbols?: string[]): Promise<ThroughputResult> {
  return withServer(name, ctx, async (server, generator, windows) => {
    const spec: ThroughputSpec = {
      scenario: 'throughput',
      ...common(server, ctx),
      ...ctx.params.throughput,
      ...(symbols ? { symbols } : {}),
    };
    const result = await generator.run<ThroughputResult>(spec, { timeoutMs: 180_000 });
    return { ...result, server: (await windows())[0] };
  });
}

function runLatency(name: ServerName, ctx: Context): Promise<LatencyStep[]> {
  const p = ctx.params.latency;
  const budget = p.rates.reduce(
    (sum, rate) => sum + (p.warmupS + Math.max(p.measureS, (p.minEvents ?? 0) / rate)) * 1000 + p.drainTimeoutMs + 1000,
    180_000,
  );
  return withServer(name, ctx, async (server, generator, windows) => {
    const spec: LatencySpec = { scenario: 'latency', ...common(server, ctx), ...p };
    const steps = await generator.run<LatencyStep[]>(spec, { timeoutMs: budget });
    const stats = await windows();
    return steps.map((step, i) => ({ ...step, server: stats[i] }));
  });
}

function runPrivate(name: ServerName, users: number, ctx: Context): Promise<PrivateResult> {
  if (!ctx.usersFile) throw new Error('no users file');
  const usersFile = ctx.usersFile;
  return withServer(name, ctx, async (server, generator, windows) => {
    const { rate, warmupS, measureS } = ctx.params.private;
    const spec: PrivateSpec = {
      scenario: 'private',
      ...common(server, ctx),
      usersFile,
      users,
      rate,
      warmupS,
      measureS,
    };
    const result = await generator.run<PrivateResult>(spec, { timeoutMs: 600_000 });
    return { ...result, server: (await windows())[0] };
  });
}

function runIdle(name: ServerName, ctx: Context): Promise<IdleResult> {
  const { clients, settleMs } = ctx.params.idle;
  return withServer(name, ctx, async (server, generator) => {
    await sleep(settleMs);
    const before = await server.memory();
    let after = before;
    await generator.run(
      { scenario: 'idle', ...common(server, ctx), clients },
      {
        timeoutMs: 600_000,
        whileConnected: async () => {
          await sleep(settleMs);
          after = await server.memory();
        },
      },
    );
    return {
      clients,
      rssBefore: before.rss,
      rssAfter: after.rss,
      heapBefore: before.heapUsed,
      heapAfter: after.heapUsed,
      rssPerConnection: Math.round((after.rss - before.rss) / clients),
      heapPerConnection: Math.round((after.heapUsed - before.heapUsed) / clients),
    };
  });
}

function record<T>(
  rep: number,
  server: ServerName,
  what: string,
  run: () => Promise<T>,
  describe: (r: T) => string,
): Promise<RunRecord<T>> {
  return recordRun(log, rep, server, what, run, describe);
}

const describeThroughput = (r: ThroughputResult) =>
  `${fmt(r.deliveriesPerSec)} deliveries/s, ${fmt(r.serverCpuUsPerDelivery, 2)} µs CPU/delivery, ` +
  `lost ${r.lost}, generator ${r.generator.cpuPct}% CPU`;
const describeLatency = (steps: LatencyStep[]) =>
  steps.map((s) => `${s.rate}/s p99 ${s.p99 === null ? '∞' : fmt(s.p99, 1)}`).join(', ');
const describePrivate = (r: PrivateResult) =>
  `p50 ${fmt(r.p50, 2)} ms, p99 ${fmt(r.p99, 2)} ms, wrong-user ${r.wrongUser}, lost ${r.lost}`;
const describeIdle = (r: IdleResult) =>
  `${fmt(r.rssPerConnection)} B RSS/connection, ${fmt(r.heapPerConnection)} B heap/connection`;

// ---- main ---------------------------------------------------------------------------------

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      reps: { type: 'string' },
      only: { type: 'string' },
      servers: { type: 'string' },
      profile: { type: 'boolean', default: false },
      report: { type: 'string' },
      'no-docs': { type: 'boolean', default: false },
      'no-priority': { type: 'boolean', default: false },
      'socketio-client': { type: 'string', default: 'lean' },
      rates: { type: 'string' },
      connections: { type: 'string' },
      workers: { type: 'string' },
    },
    strict: true,
  });

  if (values.report) {
    const saved = JSON.parse(readFileSync(values.report, 'utf8')) as BenchResults;
    // A part run's results rewrite only their own blocks, never the full run's.
    if (!/--(only|servers)\b/.test(saved.command)) {
      writeReport(saved, ROOT);
      log(`docs/benchmarks.md and docs/benchmarks-latency.svg rewritten from ${values.report}`);
    }
    for (const block of writePartReports(saved, ROOT)) log(`the ${block} block rewritten from ${values.report}`);
    return 0;
  }

  const quick = values.quick;
  const params: Parameters = structuredClone(quick ? QUICK : FULL);
  if (values.reps) {
    params.reps = Math.max(1, Number(values.reps));
    params.private = { ...params.private, reps: params.reps };
    params.scale = { ...params.scale, reps: params.reps };
  }
  if (values.rates) {
    const rates = values.rates.split(',').map(Number);
    if (rates.some((r) => !Number.isFinite(r) || r <= 0))
      throw new Error(`--rates takes events/s such as 10,50,100; got "${values.rates}"`);
    params.latency.rates = rates;
  }
  const scenarios: Scenario[] = quick
    ? ['throughput', 'orders']
    : values.only
      ? (values.only.split(',') as Scenario[])
      : SCENARIOS;
  for (const s of scenarios)
    if (!SCENARIOS.includes(s)) throw new Error(`unknown scenario "${s}" (scenarios: ${SCENARIOS.join(', ')})`);
  let servers: ServerName[] = quick
    ? ['tradewire', 'naive']
    : values.servers
      ? (values.servers.split(',') as ServerName[])
      : ['tradewire', 'naive', 'socketio'];
  for (const s of servers) if (!(s in SERVERS)) throw new Error(`unknown server "${s}"`);

  const socketIoClient = values['socketio-client'];
  if (socketIoClient !== 'lean' && socketIoClient !== 'official')
    throw new Error('--socketio-client is lean or official');
  const notes: string[] = [];
  if (servers.includes('socketio')) {
    notes.push(
      socketIoClient === 'lean'
        ? 'Socket.IO clients: the lean Engine.IO/Socket.IO client on the raw WebSocket client ' +
            '(`--socketio-client official` uses socket.io-client, ' +
            'which saturates the generator near 50,000 messages/s).'
        : 'Socket.IO clients: socket.io-client (official), WebSocket transport only.',
    );
  }
  if (!values['no-priority']) {
    setNiceness(NICENESS);
    notes.push(
      `Priority: the servers, the generator and redis-server ran at nice ${NICENESS}, ` +
        `so that other work on this shared machine ` +
        `gets little of their CPUs (\`--no-priority\` turns this off). ` +
        `The "wait %" columns show what contention remained.`,
    );
  }
  if (!tradewireAvailable()) {
    if (quick)
      throw new Error('apps/ws/src/index.ts is missing: the quick mode compares tradewire with the naive broadcast');
    notes.push('apps/ws is not in this checkout: tradewire was not measured.');
    servers = servers.filter((s) => s !== 'tradewire');
  }
  const cores = (await import('node:os')).cpus().length;
  if (cores < 2)
    throw new Error(`the benchmark pins the server and the generator to separate CPUs; this machine has ${cores}`);
  const fileLimit = openFileLimit();
  const maxClients = Math.max(params.idle.clients, ...params.private.users);
  if (!quick && scenarios.some((s) => s !== 'orders') && fileLimit < maxClients + 1000) {
    throw new Error(
      `ulimit -n is ${fileLimit}; ` +
        `the scenarios open ${maxClients} connections per process: raise it (ulimit -n ${maxClients + 5000})`,
    );
  }

  const results: BenchResults = {
    mode: quick ? 'quick' : 'full',
    command: `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`,
    startedAt: new Date().toISOString(),
    machine: machineInfo(),
    params,
    servers,
    notes,
    throughput: [],
    latency: [],
    private: [],
    idle: [],
    e2e: [],
    symbols: [],
    profiles: [],
  };
  log(
    `${results.command}: servers ${servers.join(', ')}; ` +
      `scenarios ${scenarios.join(', ')}; ${params.reps} repetitions; ` +
      `load average ${loadavg()[0]!.toFixed(2)}`,
  );

  let database: ScratchDatabase | undefined;
  let orders: OrdersResults | undefined;
  const interrupted = new Promise<never>((_, reject) => {
    const onSignal = (signal: string) => reject(new Error(`interrupted by ${signal}`));
    process.once('SIGINT', () => onSignal('SIGINT'));
    process.once('SIGTERM', () => onSignal('SIGTERM'));
  });
  interrupted.catch(() => {});

  const body = async () => {
    const redis = await startRedis(GENERATOR_CORE);
    const ctx: Context = { params, redisUrl: redis.url, usersFile: undefined, databaseUrl: undefined, socketIoClient };

    if (scenarios.includes('private') || scenarios.includes('e2e') || scenarios.includes('scale')) {
      const count = Math.max(
        scenarios.includes('private') ? Math.max(...params.private.users) : 0,
        scenarios.includes('e2e') ? params.e2e.users : 0,
        scenarios.includes('scale') ? params.scale.partitionUsers : 0,
      );
      const usersFile = join(RESULTS_DIR, 'users.json');
      try {
        database = await createScratchDatabase('bench');
        const started = Date.now();
        writeUsers(usersFile, await seedUsers(database.url, count));
        ctx.databaseUrl = database.url;
        notes.push(
          `Sessions: ${count.toLocaleString('en-US')} users seeded with ` +
            `\`bench/seed-users.ts\` into a fresh PostgreSQL database; ` +
            `every server verifies tokens with \`@repo/db\`'s \`createSessionStore\`.`,
        );
        log(`seeded ${count} users with sessions in ${((Date.now() - started) / 1000).toFixed(1)} s`);
      } catch (err) {
        writeUsers(usersFile, syntheticUsers(count));
        notes.push(
          `Sessions: PostgreSQL was not reachable (${(err as Error).message}); ` +
            `every server verified tokens from a users file (bench/servers/sessions.ts), ` +
            `and the end-to-end scenario was skipped.`,
        );
        log(`PostgreSQL unreachable, using synthetic users: ${(err as Error).message}`);
      }
      ctx.usersFile = usersFile;
    }

    const privateReps = scenarios.includes('private') ? Math.max(params.reps, params.private.reps ?? 0) : 0;
    for (let rep = 1; rep <= Math.max(params.reps, privateReps); rep++) {
      // Rotate the order each repetition, so no server always runs first (or last) in a rep.
      const order = servers.map((_, i) => servers[(i + rep - 1) % servers.length]!);
      for (const scenario of scenarios) {
        if (scenario === 'e2e' || scenario === 'scale' || scenario === 'connections' || scenario === 'orders') continue;
        if (rep > params.reps && scenario !== 'private') continue;
        for (const server of order) {
          if (scenario === 'throughput')
            results.throughput.push(
              await record(rep, server, 'throughput', () => runThroughput(server, ctx), describeThroughput),
            );
          if (scenario === 'latency')
            results.latency.push(await record(rep, server, 'latency', () => runLatency(server, ctx), describeLatency));
          if (scenario === 'idle')
            results.idle.push(await record(rep, server, 'idle memory', () => runIdle(server, ctx), describeIdle));
          if (scenario === 'symbols' && server === 'tradewire') {
            // The baseline and the split in turn, first one then the other.
            for (const symbols of rep % 2 === 1 ? [undefined, SPLIT_SYMBOLS] : [SPLIT_SYMBOLS, undefined]) {
              const count = symbols?.length ?? 1;
              results.symbols!.push(
                await record(
                  rep,
                  server,
                  `fan-out, ${count} symbol${count > 1 ? 's, one per client' : ''}`,
                  async () => ({ ...(await runThroughput(server, ctx, symbols)), symbols: count }),
                  describeThroughput,
                ),
              );
            }
          }
          if (scenario === 'private') {
            for (const users of params.private.users) {
              results.private.push(
                await record(
                  rep,
                  server,
                  `private ${users} users`,
                  () => runPrivate(server, users, ctx),
                  describePrivate,
                ),
              );
            }
          }
        }
      }
    }

    if (scenarios.includes('e2e')) {
      if (!ctx.databaseUrl || !ctx.usersFile) notes.push('End to end: skipped (needs PostgreSQL).');
      else {
        for (let rep = 1; rep <= params.reps; rep++) {
          results.e2e.push(
            await record(
              rep,
              'tradewire',
              'end to end',
              () =>
                runEndToEnd({
                  ...params.e2e,
                  redisUrl: redis.url,
                  databaseUrl: ctx.databaseUrl!,
                  usersFile: ctx.usersFile!,
                  core: SERVER_CORE,
                  generatorCore: GENERATOR_CORE,
                }),
              (r) =>
                `p50 ${fmt(r.p50, 1)} ms, p99 ${fmt(r.p99, 1)} ms (HTTP 201 p50 ` +
                `${fmt(r.httpP50, 1)} ms), delivered ${r.delivered}/${r.orders}`,
            ),
          );
        }
      }
    }

    if (scenarios.includes('scale')) {
      results.scale = await runScale({
        params: params.scale,
        throughput: params.throughput,
        redisUrl: redis.url,
        databaseUrl: ctx.databaseUrl,
        usersFile: ctx.usersFile,
        // The node's processes may use every CPU: with WS_WORKERS=2 they share the generator's.
        nodeCores: `${SERVER_CORE},${GENERATOR_CORE}`,
        serverCore: SERVER_CORE,
        generatorCore: GENERATOR_CORE,
        log,
      });
    }

    if (scenarios.includes('connections')) {
      await runConnectionsPart(
        {
          connections: values.connections === undefined ? undefined : Number(values.connections),
          workers: values.workers === undefined ? undefined : Number(values.workers),
          niceness: values['no-priority'] ? null : NICENESS,
          writeDocs: !values['no-docs'],
        },
        redis.url,
        log,
      );
    }

    if (values.profile && servers.includes('tradewire')) {
      const runs: [string, string, (c: Context) => Promise<unknown>][] = [
        ['fan-out throughput', 'throughput', (c) => runThroughput('tradewire', c)],
        [
          'fan-out latency at 50 events/s',
          'latency',
          (c) => runLatency('tradewire', { ...c, params: { ...params, latency: { ...params.latency, rates: [50] } } }),
        ],
      ];
      if (ctx.usersFile)
        runs.push([
          `private routing, ${fmt(Math.max(...params.private.users))} users`,
          'private',
          (c) => runPrivate('tradewire', Math.max(...params.private.users), c),
        ]);
      const profileDir = join(RESULTS_DIR, 'profiles');
      mkdirSync(profileDir, { recursive: true });
      for (const [scenario, name, run] of runs) {
        const file = join(profileDir, `tradewire-${name}.cpuprofile`);
        rmSync(file, { force: true });
        await run({ ...ctx, profileFile: file });
        const relative = file.slice(ROOT.length);
        results.profiles.push({ scenario, file: relative, top: hotSpots(file, 20) });
        log(`profiled tradewire over the measured window (${scenario}): ${relative}`);
      }
    }
    if (scenarios.includes('orders')) {
      orders = await runOrdersPart({
        params: ordersParams(quick ? ORDERS_QUICK : ORDERS_FULL),
        redisUrl: redis.url,
        resultsDir: RESULTS_DIR,
        cores: { server: SERVER_CORE, generator: GENERATOR_CORE },
        log,
      });
    }
    await redis.stop();
  };

  try {
    await Promise.race([body(), interrupted]);
  } finally {
    await stopAll();
    await database?.drop().catch((err: unknown) => log(`could not drop the bench database: ${String(err)}`));
  }

  results.finishedAt = new Date().toISOString();
  results.machine.loadAtEnd = loadavg()[0] ?? 0;
  mkdirSync(RESULTS_DIR, { recursive: true });
  const saved = join(RESULTS_DIR, `${results.mode}-latest.json`);
  writeFileSync(saved, JSON.stringify(results, null, 2));
  log(`results: ${saved}`);

  if (orders) {
    writeFileSync(join(RESULTS_DIR, `orders-${results.mode}-latest.json`), JSON.stringify(orders, null, 2));
    if (!quick && !values['no-docs'] && !process.env.BENCH_ORDERS_PARAMS) {
      writeOrdersReport(orders, ROOT, results.command);
      log('wrote the order block of docs/benchmarks.md');
    }
  }

  const complete = !values.only && !values.servers && !values['no-docs'];
  if (!quick && complete) {
    writeReport(results, ROOT);
    log('wrote docs/benchmarks.md and docs/benchmarks-latency.svg');
  }
  // The parts with a block of their own are written by a part run (`--only`) too.
  if (!quick && !values.servers && !values['no-docs']) {
    for (const block of writePartReports(results, ROOT)) log(`wrote the ${block} block of docs/benchmarks.md`);
  }

  if (!quick) return 0;
  const fanOut = quickVerdict(results);
  return orders && ordersQuickVerdict(orders, log) ? fanOut : 1;
}

/**
 * `BENCH_ORDERS_PARAMS` (JSON, e.g. `{"rates":[1000,2000],"reps":1,"modes":["postgres"]}`)
 * overrides fields of the order part's parameters, to compare two builds on a few steps
 * back to back; such a run does not write the page (the flag `--no-docs` is implied).
 */
function ordersParams(base: OrdersParams): OrdersParams {
  const raw = process.env.BENCH_ORDERS_PARAMS;
  if (!raw) return base;
  let override: unknown;
  try {
    override = JSON.parse(raw);
  } catch (err) {
    throw new Error(`BENCH_ORDERS_PARAMS is not JSON: ${(err as Error).message}`, { cause: err });
  }
  if (typeof override !== 'object' || override === null || Array.isArray(override)) {
    throw new Error('BENCH_ORDERS_PARAMS must be a JSON object of order-part parameters');
  }
  const unknown = Object.keys(override).filter((k) => !(k in base));
  if (unknown.length > 0) throw new Error(`BENCH_ORDERS_PARAMS: unknown parameter(s) ${unknown.join(', ')}`);
  return { ...base, ...(override as Partial<OrdersParams>) };
}

/** The CI check: tradewire's median fan-out throughput must be at least 2× the naive broadcast's. */
function quickVerdict(results: BenchResults): number {
  const medianOf = (server: ServerName) =>
    median(
      results.throughput.filter((r) => r.server === server && r.ok).map((r) => (r.ok ? r.result.deliveriesPerSec : 0)),
    );
  const failed = results.throughput.filter((r) => !r.ok);
  const tradewire = medianOf('tradewire');
  const naive = medianOf('naive');
  const ratio = tradewire / naive;
  log(`fan-out throughput medians: tradewire ${fmt(tradewire)}/s, naive ${fmt(naive)}/s: ${fmt(ratio, 2)}×`);
  if (failed.length > 0 || !(ratio >= QUICK_MIN_RATIO)) {
    log(
      `FAIL: tradewire must deliver at least ${QUICK_MIN_RATIO}× the naive broadcast` +
        `${failed.length ? ` (${failed.length} runs failed)` : ''}`,
    );
    return 1;
  }
  log(`PASS: at least ${QUICK_MIN_RATIO}×`);
  return 0;
}

main().then(
  (code) => process.exit(code),
  async (err: unknown) => {
    process.stderr.write(`bench: ${err instanceof Error ? err.message : String(err)}\n`);
    await stopAll();
    process.exit(1);
  },
);
