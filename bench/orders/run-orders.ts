/**
 * The order path's part of `npm run bench` (`--only orders`; `--quick` runs its CI check):
 *
 * - the order ladder against the split processes (API + gateway + Redis + PostgreSQL),
 * - the same transaction as bare SQL under pgbench at the API's pool size,
 * - the ladder against the embedded mode (one process, PGlite),
 * - the ladder against two API processes on one PostgreSQL.
 *
 * Every order event is checked at the sockets: none lost, none twice, per user in seq order.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connectRedisBroker, createPriceStore } from '@repo/broker';
import { nextMessage, spawnNodeTs, type PinnedProcess } from '../lib/processes.ts';
import { processCpuMicros, runQueueWaitMs } from '../lib/proc-stat.ts';
import { writeUsers } from '../seed-users.ts';
import { readUsersFile } from '../servers/sessions.ts';
import {
  kneeOf,
  stepIsClean,
  sustainedOf,
  type OrderLadderSpec,
  type OrderStep,
  type OrderStepFigures,
} from './figures.ts';
import { launchRoles, type LaunchedRole } from '../lib/launch.ts';
import { createScratchDatabase, type ScratchDatabase } from '../lib/scratch-database.ts';
import { cpuBetween, PostgresCpu, readyWalSegments } from './pg.ts';
import { measureBreakdown, type OrderBreakdown } from './breakdown.ts';
import { PGBENCH_SCRIPTS, runPgbench, type PgbenchResult } from './pgbench.ts';

export type LadderMode = 'postgres' | 'embedded' | 'two-api';

export interface OrdersParams {
  users: number;
  rates: number[];
  warmupS: number;
  measureS: number;
  drainTimeoutMs: number;
  /** Ladder repetitions for PostgreSQL; the embedded and two-API ladders run `otherReps`. */
  reps: number;
  otherReps: number;
  modes: LadderMode[];
  pgbenchSeconds: number;
  /** Orders timed one at a time for the breakdown (0: none). */
  breakdownSamples: number;
  /** The API's PostgreSQL pool (the launcher's default), also pgbench's client count. */
  poolSize: number;
  p99LimitMs: number;
  /** The sustained rate's p99 bound; the ladder stops after the first step past it. */
  sustainedP99Ms: number;
}

export const ORDERS_FULL: OrdersParams = {
  users: 1000,
  // 2,500–3,500 between 2,000 and 4,000: on a fast machine the knee lies there, and half of
  // pgbench's rate (the target) too. 750, 1,250 and 1,750: on a slower one the knee lies
  // between 500 and 2,000, where a factor of two between steps said little.
  rates: [10, 25, 50, 100, 250, 500, 750, 1000, 1250, 1500, 1750, 2000, 2500, 3000, 3500, 4000],
  // The stand needs a few seconds to settle at a new rate (pool connections, V8's heap sizing,
  // the relay's batches): right after 1 s of warm-up the tail was still the step-up's.
  warmupS: 3,
  measureS: 5,
  drainTimeoutMs: 15_000,
  reps: 3,
  otherReps: 1,
  modes: ['postgres', 'embedded', 'two-api'],
  pgbenchSeconds: 10,
  breakdownSamples: 200,
  poolSize: 10,
  p99LimitMs: 50,
  sustainedP99Ms: 1000,
};

/**
 * The CI check: 200 orders/s on PostgreSQL for a few seconds; it fails only on an HTTP error or
 * an order event lost, doubled or out of seq order, never on a time.
 */
export const ORDERS_QUICK: OrdersParams = {
  ...ORDERS_FULL,
  users: 200,
  rates: [200],
  warmupS: 1,
  measureS: 4,
  reps: 1,
  modes: ['postgres'],
  pgbenchSeconds: 0,
  breakdownSamples: 0,
};

export interface LadderRun {
  mode: LadderMode;
  rep: number;
  ok: boolean;
  steps: OrderStep[];
  knee: number | null;
  sustained: number | null;
  error?: string;
}

export interface OrdersResults {
  startedAt: string;
  finishedAt?: string;
  params: OrdersParams;
  ladders: LadderRun[];
  pgbench: (PgbenchResult & { rep: number })[];
  breakdown?: OrderBreakdown;
  notes: string[];
}

interface Cores {
  server: number;
  generator: number;
}

type Log = (line: string) => void;

/** 48 × 16 MiB: more than one ladder or pgbench script writes between two checkpoints. */
const WAL_SEGMENTS_READY = 48;

const fmt = (n: number | null | undefined, digits = 1) =>
  n === null || n === undefined || Number.isNaN(n) ? '—' : n.toFixed(digits);

export function describeStep(s: OrderStep): string {
  const errors = Object.entries(s.errors)
    .map(([k, v]) => `${k}×${v}`)
    .join(' ');
  return (
    `${s.rate}/s (sent ${fmt(s.achievedRate, 0)}/s): HTTP p50 ${fmt(s.httpP50)} p99 ${fmt(s.httpP99)} ms, ` +
    `e2e p50 ${fmt(s.e2eP50)} p99 ${fmt(s.e2eP99)} ms, ` +
    `API ${fmt(s.apiCpuPct, 0)}% ${fmt(s.apiCpuUsPerOrder, 0)} µs/order, ` +
    `DB ${fmt(s.dbCpuPct, 0)}% ${fmt(s.dbCpuUsPerOrder, 0)} µs/order, API run-queue wait ${fmt(s.apiWaitPct, 0)}%` +
    (stepIsClean(s)
      ? ''
      : ` — lost ${s.lost}, dup ${s.duplicated}, out of order ${s.outOfOrder}, dropped ${s.socketsDropped} ${errors}`)
  );
}

/** The servers of one ladder: whose CPU to read, and where the clients go. */
interface Stand {
  apis: LaunchedRole[];
  gateways: LaunchedRole[];
  /** PostgreSQL CPU reader, null in the embedded mode (the database runs inside the process). */
  pgCpu: PostgresCpu | null;
  stop(): Promise<void>;
}

async function setPrice(redisUrl: string): Promise<void> {
  // The price worker does not run in the split stand: the benchmark sets the one price traded at.
  const broker = await connectRedisBroker(redisUrl);
  try {
    await createPriceStore(broker).setPrice('SOL', '231.45');
  } finally {
    await broker.close();
  }
}

async function startSplitStand(
  apiCount: number,
  cores: Cores,
  redisUrl: string,
  database: ScratchDatabase,
): Promise<Stand> {
  await setPrice(redisUrl);
  // That one price must stay tradable for the whole run: older than MAX_PRICE_AGE_MS is stale.
  const env = { REDIS_URL: redisUrl, DATABASE_URL: database.url, MAX_PRICE_AGE_MS: '86400000', SYMBOLS: 'SOL' };
  const started: PinnedProcess[] = [];
  try {
    const apis: LaunchedRole[] = [];
    // With two, the second API gets the generator's core: two processes on one core would
    // only share its time.
    // BENCH_API_NODE_FLAGS (e.g. `--cpu-prof --cpu-prof-dir=bench/results/profiles`) profiles the APIs.
    const apiFlags = (process.env.BENCH_API_NODE_FLAGS ?? '').split(' ').filter(Boolean);
    for (let i = 0; i < apiCount; i++) {
      const api = await launchRoles(i === 0 ? cores.server : cores.generator, ['api'], env, apiFlags);
      started.push(api.proc);
      apis.push(api);
    }
    const gateway = await launchRoles(cores.server, ['ws'], env);
    started.push(gateway.proc);
    const pgCpu = await PostgresCpu.open(database.name);
    return {
      apis,
      gateways: [gateway],
      pgCpu,
      async stop() {
        await pgCpu.close();
        for (const proc of started.reverse()) await proc.stop();
      },
    };
  } catch (err) {
    for (const proc of started.reverse()) await proc.stop();
    throw err;
  }
}

async function startEmbeddedStand(cores: Cores, users: number, usersFile: string): Promise<Stand> {
  const dataDir = mkdtempSync(join(tmpdir(), 'tradewire-bench-embedded-'));
  try {
    const { openDatabase } = await import('@repo/db');
    const { seedUsersInto } = await import('../seed-users.ts');
    const db = await openDatabase({ dataDir });
    try {
      writeUsers(usersFile, await seedUsersInto(db, users));
    } finally {
      await db.close();
    }
    // `npm start` with no environment: all roles in one process, PGlite in DATA_DIR, the
    // in-process broker, the simulated price feed.
    const all = await launchRoles(cores.server, [], { DATA_DIR: dataDir });
    return {
      apis: [all],
      gateways: [],
      pgCpu: null,
      async stop() {
        await all.proc.stop();
        rmSync(dataDir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    rmSync(dataDir, { recursive: true, force: true });
    throw err;
  }
}

/** Runs one ladder against `stand` from a client process on the generator's core. */
async function runLadder(
  stand: Stand,
  spec: OrderLadderSpec,
  cores: Cores,
  onStep: (step: OrderStep) => void,
): Promise<OrderStep[]> {
  const client = spawnNodeTs(cores.generator, 'bench/orders/client.ts', [], ['--max-semi-space-size=64']);
  const apiPids = stand.apis.map((a) => a.proc.pid);
  const wsPids = stand.gateways.map((g) => g.proc.pid);
  const sum = (pids: number[]) => pids.reduce((total, pid) => total + processCpuMicros(pid), 0);
  const waited = () => apiPids.reduce((total, pid) => total + runQueueWaitMs(pid), 0);
  let window: { at: number; api: number; wait: number; ws: number; db: Map<number, number> | null } | undefined;
  const steps: OrderStep[] = [];
  const pending: Promise<void>[] = [];
  const onMessage = (raw: unknown) => {
    const message = raw as { type: string; step?: OrderStepFigures };
    if (message.type === 'window') {
      const at = performance.now();
      const api = sum(apiPids);
      const wait = waited();
      const ws = sum(wsPids);
      pending.push(
        (stand.pgCpu?.sample() ?? Promise.resolve(null)).then((db) => {
          window = { at, api, wait, ws, db };
        }),
      );
    } else if (message.type === 'step' && message.step) {
      const figures = message.step;
      const seconds = (performance.now() - (window?.at ?? 0)) / 1000;
      const api = sum(apiPids) - (window?.api ?? 0);
      const ws = sum(wsPids) - (window?.ws ?? 0);
      const wait = waited() - (window?.wait ?? 0);
      const before = window?.db ?? null;
      pending.push(
        (stand.pgCpu?.sample() ?? Promise.resolve(null)).then((after) => {
          const db = before && after ? cpuBetween(before, after) : null;
          const step: OrderStep = {
            ...figures,
            apiCpuPct: Math.round(api / seconds / 1e4),
            apiCpuUsPerOrder: Math.round(api / Math.max(1, figures.orders)),
            wsCpuPct: Math.round(ws / seconds / 1e4),
            apiWaitPct: Math.round(wait / seconds / 10 / apiPids.length),
            dbCpuPct: db === null ? null : Math.round(db / seconds / 1e4),
            dbCpuUsPerOrder: db === null ? null : Math.round(db / Math.max(1, figures.orders)),
          };
          steps.push(step);
          onStep(step);
        }),
      );
    }
  };
  client.child.on('message', onMessage);
  try {
    const budget = spec.rates.length * ((spec.warmupS + spec.measureS + 3) * 1000 + spec.drainTimeoutMs) + 120_000;
    const done = nextMessage(client, 'result', budget);
    client.child.send({ type: 'run', spec });
    await done;
    await Promise.all(pending);
    return steps;
  } finally {
    client.child.off('message', onMessage);
    await client.stop();
  }
}

export interface OrdersContext {
  params: OrdersParams;
  redisUrl: string;
  resultsDir: string;
  cores: Cores;
  log: Log;
}

/** Runs the order part; never throws for a failed ladder (it is recorded as failed). */
export async function runOrdersPart(ctx: OrdersContext): Promise<OrdersResults> {
  const { params, log, cores } = ctx;
  const results: OrdersResults = {
    startedAt: new Date().toISOString(),
    params,
    ladders: [],
    pgbench: [],
    notes: [],
  };
  const usersFile = join(ctx.resultsDir, 'order-users.json');
  const spec = (apiUrls: string[], wsUrls: string[], file: string): OrderLadderSpec => ({
    apiUrls,
    wsUrls,
    usersFile: file,
    users: params.users,
    rates: params.rates,
    warmupS: params.warmupS,
    measureS: params.measureS,
    drainTimeoutMs: params.drainTimeoutMs,
    // Past the sustained rate, a higher one only measures a longer backlog.
    stopPastP99Ms: params.rates.length > 1 ? params.sustainedP99Ms : undefined,
    httpConnections: 256,
    symbol: 'SOL',
    size: '0.01',
  });

  const ladder = async (mode: LadderMode, rep: number, stand: () => Promise<Stand>, file: string) => {
    const started = Date.now();
    let running: Stand | undefined;
    const steps: OrderStep[] = [];
    try {
      running = await stand();
      const apiUrls = running.apis.map((a) => a.api!);
      const wsUrls = (running.gateways.length ? running.gateways : running.apis).map((g) => g.ws!);
      const live = running;
      await runLadder(running, spec(apiUrls, wsUrls, file), cores, (step) => {
        steps.push(step);
        log(`orders ${mode} rep ${rep}: ${describeStep(step)}`);
        if (Object.keys(step.errors).length > 0) {
          const errors = live.apis.flatMap((a) => loggedErrors(a.proc.stdout()));
          if (errors.length > 0) {
            log(`orders ${mode} rep ${rep}: the API logged: ${errors.join(' | ')}`);
            results.notes.push(`${mode} rep ${rep}, ${step.rate} orders/s: the API logged ${errors.join('; ')}`);
          }
        }
      });
      const knee = kneeOf(steps, params.p99LimitMs);
      const sustained = sustainedOf(steps, params.sustainedP99Ms);
      results.ladders.push({ mode, rep, ok: true, steps, knee, sustained });
      log(
        `orders ${mode} rep ${rep}: knee ${knee ?? 'none'}, sustained ${sustained ?? 'none'} orders/s ` +
          `(${((Date.now() - started) / 1000).toFixed(0)} s)`,
      );
    } catch (err) {
      const error = err instanceof Error ? err.message : String(err);
      results.ladders.push({ mode, rep, ok: false, steps, knee: null, sustained: null, error: error.slice(0, 2000) });
      log(`orders ${mode} rep ${rep}: FAILED: ${error.split('\n')[0]}`);
    } finally {
      await running?.stop();
    }
  };

  // Every ladder on PostgreSQL and every pgbench script starts with spare WAL segments, as on a
  // server that has been taking writes (pg.ts): without them the first run after a quiet spell
  // paid for making them, in stalls the later ones did not have.
  const readyWal = async (before: string) => {
    try {
      const wal = await readyWalSegments(WAL_SEGMENTS_READY);
      log(`orders: ${wal.ready} WAL segments ready before ${before} (had ${wal.before} files; ${wal.ms} ms)`);
    } catch (err) {
      const why = `could not ready WAL segments before ${before}: ${(err as Error).message.split('\n')[0]}`;
      log(`orders: ${why}`);
      results.notes.push(why);
    }
  };

  const needsPostgres = params.modes.some((m) => m !== 'embedded') || params.pgbenchSeconds > 0;
  let database: ScratchDatabase | undefined;
  let bare: ScratchDatabase | undefined;
  try {
    if (needsPostgres) {
      const { seedUsers } = await import('../seed-users.ts');
      database = await createScratchDatabase('bench_orders');
      writeUsers(usersFile, await seedUsers(database.url, params.users));
      log(`orders: seeded ${params.users} users into ${database.name}`);
    }
    if (params.breakdownSamples > 0 && database) {
      const stand = await startSplitStand(1, cores, ctx.redisUrl, database);
      try {
        results.breakdown = await measureBreakdown({
          databaseUrl: database.url,
          redisUrl: ctx.redisUrl,
          apiUrl: stand.apis[0]!.api!,
          users: readUsersFile(usersFile),
          samples: params.breakdownSamples,
        });
        log(`orders breakdown (median ms): ${JSON.stringify(results.breakdown)}`);
      } catch (err) {
        results.notes.push(`The breakdown failed: ${(err as Error).message.slice(0, 300)}`);
      } finally {
        await stand.stop();
      }
    }
    const maxReps = Math.max(params.reps, params.otherReps);
    for (let rep = 1; rep <= maxReps; rep++) {
      if (params.modes.includes('postgres') && rep <= params.reps) {
        await readyWal(`postgres rep ${rep}`);
        await ladder('postgres', rep, () => startSplitStand(1, cores, ctx.redisUrl, database!), usersFile);
      }
      if (params.pgbenchSeconds > 0 && rep <= params.reps) {
        // A database seeded the same way, so the ladder's rows do not weigh on the bare SQL.
        bare ??= await createScratchDatabase('bench_bare');
        if (rep === 1) {
          const { seedUsers } = await import('../seed-users.ts');
          await seedUsers(bare.url, params.users);
        }
        for (const script of PGBENCH_SCRIPTS) {
          await readyWal(`pgbench ${script} rep ${rep}`);
          try {
            const r = await runPgbench(bare.url, script, {
              clients: params.poolSize,
              seconds: params.pgbenchSeconds,
              users: params.users,
              core: cores.generator,
            });
            results.pgbench.push({ ...r, rep });
            log(`orders pgbench ${script} rep ${rep}: ${r.tps} TPS at ${r.clients} clients (${r.failed} failed)`);
          } catch (err) {
            log(`orders pgbench ${script} rep ${rep}: FAILED: ${(err as Error).message.split('\n')[0]}`);
            results.notes.push(`pgbench ${script} rep ${rep} failed: ${(err as Error).message.slice(0, 300)}`);
          }
        }
      }
      if (params.modes.includes('two-api') && rep <= params.otherReps) {
        await readyWal(`two-api rep ${rep}`);
        await ladder('two-api', rep, () => startSplitStand(2, cores, ctx.redisUrl, database!), usersFile);
      }
      if (params.modes.includes('embedded') && rep <= params.otherReps) {
        const embeddedUsers = join(ctx.resultsDir, 'order-users-embedded.json');
        await ladder('embedded', rep, () => startEmbeddedStand(cores, params.users, embeddedUsers), embeddedUsers);
      }
    }
  } finally {
    await database?.drop().catch((err: unknown) => log(`could not drop ${database!.name}: ${String(err)}`));
    await bare?.drop().catch((err: unknown) => log(`could not drop ${bare!.name}: ${String(err)}`));
  }
  results.finishedAt = new Date().toISOString();
  return results;
}

/** The distinct error messages of a process's JSON log lines (level ≥ error), with counts. */
function loggedErrors(stdout: string): string[] {
  const counts = new Map<string, number>();
  for (const line of stdout.split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      const entry = JSON.parse(line) as { level?: number; msg?: string; err?: { message?: string } | string };
      if ((entry.level ?? 0) < 50) continue;
      const detail = typeof entry.err === 'string' ? entry.err : entry.err?.message;
      const key = `${entry.msg ?? ''}${detail ? `: ${detail}` : ''}`.slice(0, 200);
      counts.set(key, (counts.get(key) ?? 0) + 1);
    } catch {
      // Not a log line.
    }
  }
  return [...counts].map(([message, n]) => `${message} (×${n})`);
}

/** The CI verdict: every order answered 201 and its one event delivered in seq order. */
export function ordersQuickVerdict(results: OrdersResults, log: Log): boolean {
  const runs = results.ladders.filter((l) => l.mode === 'postgres');
  const bad = runs.filter((l) => !l.ok || l.steps.length === 0 || !l.steps.every(stepIsClean));
  for (const run of runs) for (const step of run.steps) log(`orders check: ${describeStep(step)}`);
  if (runs.length === 0 || bad.length > 0) {
    const why = bad.map((l) => l.error ?? 'an order event was lost, doubled or out of order, or HTTP failed');
    log(`FAIL: the order path at ${results.params.rates.join(', ')} orders/s: ${why.join('; ') || 'no run'}`);
    return false;
  }
  log(`PASS: every order answered 201 and its event delivered once, in seq order`);
  return true;
}
