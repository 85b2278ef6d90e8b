import { readdirSync, readFileSync } from 'node:fs';
import type { PartitionShareLoad, PartitionShareSpec } from '../load/partition-share.ts';
import type { ThroughputResult, ThroughputSpec } from '../load/scenarios.ts';
import { sleep } from './clock.ts';
import { freePort } from './free-port.ts';
import { startGenerator } from './generator.ts';
import { processCpuMicros } from './proc-stat.ts';
import { spawnNodeTs, type PinnedProcess } from './processes.ts';
import { recordRun } from './record.ts';
import type { Parameters, RunRecord } from './results.ts';
import type { PartitionShareRun, ProcessCpu, ScaleResults, WorkersRun } from './scale-results.ts';
import { SERVERS, startServer, type RunningServer } from './servers.ts';

const LAUNCHER = 'apps/server/src/main.ts';

export interface ScaleContext {
  params: Parameters['scale'];
  throughput: Parameters['throughput'];
  redisUrl: string;
  databaseUrl: string | undefined;
  usersFile: string | undefined;
  /** CPUs the gateway node may use (all its processes), e.g. "0,1". */
  nodeCores: string;
  /** CPU of the single bench gateways of the routing share. */
  serverCore: number;
  generatorCore: number;
  log: (line: string) => void;
}

/**
 * The scale part: the launcher's gateway (`npm start -- ws`) as one process and with
 * `WS_WORKERS`, on the fan-out throughput setup, and the share of Redis messages each of
 * several gateways delivers on the partitioned channel layout.
 */
export async function runScale(ctx: ScaleContext): Promise<ScaleResults> {
  const results: ScaleResults = { workers: [], partitions: [] };
  const p = ctx.params;
  if (!ctx.databaseUrl) results.workersSkipped = 'needs PostgreSQL: the launcher’s ws role opens the database';
  else {
    for (let rep = 1; rep <= p.reps; rep++) {
      const order = p.workers.map((_, i) => p.workers[(i + rep - 1) % p.workers.length]!);
      for (const workers of order) {
        results.workers.push(
          await attempt(ctx, rep, `scale WS_WORKERS=${workers}`, () => runWorkers(workers, ctx), describeWorkers),
        );
      }
    }
  }
  if (ctx.usersFile) {
    for (const placement of ['partition', 'random'] as const) {
      results.partitions.push(
        await attempt(
          ctx,
          1,
          `scale routing share, ${p.gateways} gateways, users placed by ${placement}`,
          () => runShare(placement, ctx),
          describeShare,
        ),
      );
    }
  }
  return results;
}

function attempt<T>(
  ctx: ScaleContext,
  rep: number,
  what: string,
  run: () => Promise<T>,
  describe: (r: T) => string,
): Promise<RunRecord<T>> {
  return recordRun(ctx.log, rep, 'tradewire', what, run, describe);
}

const describeWorkers = (r: WorkersRun) => {
  const rate = Math.round(r.throughput.deliveriesPerSec).toLocaleString('en-US');
  const cpu = r.processes.map((x) => `${x.role} ${x.cpuPct}%`).join(', ');
  const perDelivery = r.workerCpuUsPerDelivery.toFixed(2);
  return `${rate} deliveries/s, ${perDelivery} µs worker CPU/delivery (${cpu}), lost ${r.throughput.lost}`;
};
const describeShare = (r: PartitionShareRun) =>
  r.gateways
    .map((g) => `gateway ${g.gateway}: ${g.users} users, delivered ${g.delivered} of ${g.received} received`)
    .join('; ') + ` (published ${r.published}, lost ${r.lost}, wrong-user ${r.wrongUser})`;

/**
 * The cluster workers of the launcher `pid`: its children running the launcher's entry (tsx's
 * esbuild service is a child too).
 */
function childPids(pid: number): number[] {
  const children: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid !== pid) continue;
      if (readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes(LAUNCHER)) children.push(Number(entry));
    } catch {
      // Gone meanwhile.
    }
  }
  return children;
}

/** Starts the launcher's gateway role with `WS_WORKERS=workers` and waits until it serves. */
async function startNode(workers: number, ctx: ScaleContext): Promise<{ proc: PinnedProcess; port: number }> {
  const port = await freePort();
  const proc = spawnNodeTs(ctx.nodeCores, LAUNCHER, ['ws'], [], {
    env: {
      REDIS_URL: ctx.redisUrl,
      DATABASE_URL: ctx.databaseUrl,
      WS_PORT: String(port),
      WS_WORKERS: String(workers),
      ALLOWED_ORIGINS: 'http://127.0.0.1',
      // Every client of a load test comes from one address.
      WS_LIMIT_EXEMPT: '127.0.0.1',
      SYMBOLS: 'SOL',
      LOG_LEVEL: 'warn',
      NODE_ENV: 'production',
    },
  });
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (proc.child.exitCode !== null)
      throw new Error(`the gateway exited (${proc.child.exitCode}): ${proc.stderr().slice(-2000)}`);
    if (Date.now() > deadline) {
      await proc.stop();
      throw new Error(
        `the gateway with WS_WORKERS=${workers} did not serve within 60 s: ${proc.stderr().slice(-2000)}`,
      );
    }
    const healthy = await fetch(`http://127.0.0.1:${port}/health`)
      .then((res) => res.ok)
      .catch(() => false);
    if (healthy && (workers === 1 || childPids(proc.pid).length >= workers)) return { proc, port };
    await sleep(250);
  }
}

async function runWorkers(workers: number, ctx: ScaleContext): Promise<WorkersRun> {
  const { proc, port } = await startNode(workers, ctx);
  const generator = startGenerator(ctx.generatorCore);
  let pids: { pid: number; role: ProcessCpu['role'] }[] = [];
  let start = new Map<number, number>();
  let end = new Map<number, number>();
  let t0 = 0;
  let t1 = 0;
  const cpuOf = () => new Map(pids.map(({ pid }) => [pid, processCpuMicros(pid)]));
  try {
    const spec: ThroughputSpec = {
      scenario: 'throughput',
      target: { protocol: 'json', host: '127.0.0.1', port, path: '/', origin: 'http://127.0.0.1' },
      redisUrl: ctx.redisUrl,
      serverPid: proc.pid,
      ...ctx.throughput,
    };
    const result = await generator.run<ThroughputResult>(spec, {
      timeoutMs: 180_000,
      onWindow(phase) {
        if (phase === 'start') {
          const children = childPids(proc.pid);
          // One process: it is the gateway. Workers: the primary only forwards connections.
          pids =
            children.length === 0
              ? [{ pid: proc.pid, role: 'worker' }]
              : [{ pid: proc.pid, role: 'primary' }, ...children.map((pid) => ({ pid, role: 'worker' as const }))];
          start = cpuOf();
          t0 = performance.now();
        } else {
          end = cpuOf();
          t1 = performance.now();
        }
      },
    });
    const used = (pid: number) => (end.get(pid) ?? 0) - (start.get(pid) ?? 0);
    const total = pids.reduce((sum, { pid }) => sum + used(pid), 0);
    const ofWorkers = pids.filter((x) => x.role === 'worker').reduce((sum, { pid }) => sum + used(pid), 0);
    const deliveries = result.deliveries;
    return {
      workers,
      throughput: result,
      nodeCpuUsPerDelivery: deliveries > 0 ? total / deliveries : Number.NaN,
      workerCpuUsPerDelivery: deliveries > 0 ? ofWorkers / deliveries : Number.NaN,
      processes: pids.map(({ pid, role }) => ({
        pid,
        role,
        cpuPct: Math.round((used(pid) / 1000 / (t1 - t0)) * 100),
      })),
    };
  } finally {
    await generator.stop();
    const children = childPids(proc.pid);
    await proc.stop();
    // Workers outliving their primary (it was killed) are stopped by their PID.
    for (const pid of children) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // Already gone.
      }
    }
  }
}

/** The private messages a gateway received from Redis, from its `/metrics`. */
async function receivedOrders(server: RunningServer): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${server.port}/metrics`)).text();
  const match = /^tradewire_ws_broker_messages_total\{kind="order_filled"\} (\d+)/m.exec(text);
  return match ? Number(match[1]) : 0;
}

async function runShare(placement: 'partition' | 'random', ctx: ScaleContext): Promise<PartitionShareRun> {
  const p = ctx.params;
  const servers: RunningServer[] = [];
  const generator = startGenerator(ctx.generatorCore);
  try {
    for (let g = 0; g < p.gateways; g++) {
      servers.push(
        await startServer(SERVERS.tradewire, {
          core: ctx.serverCore,
          redisUrl: ctx.redisUrl,
          usersFile: ctx.usersFile,
          databaseUrl: ctx.databaseUrl,
          args: ['--partitions', String(p.partitions)],
        }),
      );
    }
    const spec: PartitionShareSpec = {
      scenario: 'partition-share',
      redisUrl: ctx.redisUrl,
      targets: servers.map((s) => s.target),
      usersFile: ctx.usersFile!,
      users: p.partitionUsers,
      placement,
      partitions: p.partitions,
      rate: p.partitionRate,
      measureS: p.partitionMeasureS,
    };
    // CPU from the clients being connected (the generator settles then) to the end: the
    // publishing, receiving and delivering, not the connection burst.
    let cpuAtSettle: number[] = [];
    const load = await generator.run<PartitionShareLoad>(spec, {
      timeoutMs: 300_000,
      onSettle: async () => {
        cpuAtSettle = servers.map((s) => processCpuMicros(s.proc.pid));
        await Promise.resolve();
      },
    });
    const cpuMs = servers.map((s, g) => (processCpuMicros(s.proc.pid) - (cpuAtSettle[g] ?? 0)) / 1000);
    const received = await Promise.all(servers.map(receivedOrders));
    return {
      placement,
      users: p.partitionUsers,
      partitions: p.partitions,
      published: load.published,
      gateways: servers.map((_, g) => ({
        gateway: g + 1,
        users: load.users[g]!,
        received: received[g]!,
        delivered: load.delivered[g]!,
        cpuMs: cpuMs[g]!,
      })),
      lost: load.lost,
      wrongUser: load.wrongUser,
    };
  } finally {
    await generator.stop();
    await Promise.all(servers.map((s) => s.stop()));
  }
}
