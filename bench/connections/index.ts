/**
 * The connections part of `npm run bench` (`--only connections`): 100,000 sockets on one
 * gateway node. `runConnectionsPart` is what bench/run.ts calls; the options below size it.
 *
 *   npm run bench -- --only connections                               100,000 on WS_WORKERS=8, docs written
 *   npm run bench -- --only connections --connections 18000 --workers 0   one process, no docs
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { setPriority } from 'node:os';
import { join } from 'node:path';
import { ROOT } from '../lib/processes.ts';
import { writeConnectionsReport } from './report.ts';
import { CONNECTIONS_DEFAULTS, runConnections, type ConnectionsParams } from './run-connections.ts';

export interface ConnectionsOptions {
  connections?: number;
  workers?: number;
  processes?: number;
  /** Nice value for the gateway node and the load processes (inherited from this process); null keeps it. */
  niceness?: number | null;
  /** Whether a run at the default size rewrites its block of docs/benchmarks.md (`--no-docs`: not). */
  writeDocs?: boolean;
}

export async function runConnectionsPart(
  options: ConnectionsOptions,
  redisUrl: string,
  log: (line: string) => void,
): Promise<void> {
  const { niceness = null, writeDocs = true, ...sizes } = options;
  const params: ConnectionsParams = {
    ...CONNECTIONS_DEFAULTS,
    ...Object.fromEntries(Object.entries(sizes).filter(([, v]) => v !== undefined)),
  };
  // Every process this part starts inherits the runner's priority: on a shared machine the
  // node and its clients then get most of the two cores, as the other scenarios' servers do.
  if (niceness !== null) setPriority(niceness);
  // Each process must stay under the hard open-file limit (20,000 here, and not raisable):
  // the gateway's workers and the load processes split the sockets between them.
  const perLoad = Math.ceil(params.connections / params.processes);
  const perGateway = Math.ceil(params.connections / Math.max(1, params.workers));
  if (perLoad > 18_000 || perGateway > 18_000) {
    throw new Error(
      `${params.connections} connections need ≤ 18,000 sockets per process: ` +
        `${perLoad} per load process, ${perGateway} per gateway process (raise --processes or --workers)`,
    );
  }
  // For diagnosing the reconnect storm only (never set by `npm run bench`, never with docs written):
  // skips the ticks, the idle and the busy windows.
  if (process.env.BENCH_CONNECTIONS_STORM_ONLY && params.connections !== CONNECTIONS_DEFAULTS.connections) {
    Object.assign(params, { ticks: 0, idleWindowS: 1, busyWindowS: 0 });
  }
  // For diagnosing the fan-out only (never set by `npm run bench`, never with docs written): the
  // open and the ticks, then no idle or busy window and no storm.
  // The variable's value, when a number, is how many ticks.
  const ticksOnly = Boolean(process.env.BENCH_CONNECTIONS_TICKS_ONLY);
  if (ticksOnly) {
    const ticks = Number(process.env.BENCH_CONNECTIONS_TICKS_ONLY);
    Object.assign(params, { idleWindowS: 1, busyWindowS: 0, ...(ticks > 0 ? { ticks } : {}) });
  }
  log(`connections: ${JSON.stringify(params)}${ticksOnly ? ' (ticks only)' : ''}`);
  const result = await runConnections(params, redisUrl, log, { ticksOnly });
  const dir = join(ROOT, 'bench/results');
  mkdirSync(dir, { recursive: true });
  const saved = join(dir, `connections-${params.connections}${ticksOnly ? '-ticks' : ''}-latest.json`);
  writeFileSync(saved, JSON.stringify(result, null, 2));
  log(`connections results: ${saved}`);
  if (writeDocs && !ticksOnly && params.connections === CONNECTIONS_DEFAULTS.connections) {
    writeConnectionsReport(result, ROOT);
    log('wrote the connections block of docs/benchmarks.md');
  }
}
