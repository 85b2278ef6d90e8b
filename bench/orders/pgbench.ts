import { join } from 'node:path';
import { spawnPinned, ROOT } from '../lib/processes.ts';

export interface PgbenchResult {
  script: string;
  clients: number;
  seconds: number;
  tps: number;
  latencyAvgMs: number | null;
  transactions: number;
  failed: number;
}

/** The bare-SQL transactions, as pgbench scripts (see the comment at the top of each). */
export const PGBENCH_SCRIPTS = [
  'place-order-statements.sql',
  'place-order-compact.sql',
  'place-order-optimistic.sql',
] as const;

/**
 * Runs `pgbench` with one of the bare-SQL order scripts against `url` (seeded with `users`
 * users, ids 1..users): `clients` connections, 2 threads, `seconds` long, prepared
 * statements, pinned to `core` like the ladder's load client.
 */
export async function runPgbench(
  url: string,
  script: string,
  options: { clients: number; seconds: number; users: number; core: number },
): Promise<PgbenchResult> {
  const args = [
    '-n',
    '-M',
    'prepared',
    '-f',
    join(ROOT, 'bench/orders', script),
    '-c',
    String(options.clients),
    '-j',
    '2',
    '-T',
    String(options.seconds),
    '-D',
    `users=${options.users}`,
    url,
  ];
  const proc = spawnPinned(options.core, 'pgbench', args, { stdout: true });
  const code = await proc.exited;
  const out = proc.stdout();
  if (code !== 0) throw new Error(`pgbench exited with ${code}: ${proc.stderr().slice(-1500)}`);
  const number = (pattern: RegExp) => {
    const match = pattern.exec(out);
    return match ? Number(match[1]) : null;
  };
  const tps = number(/^tps = ([\d.]+)/m);
  if (tps === null) throw new Error(`no tps in pgbench output:\n${out.slice(-1500)}`);
  return {
    script,
    clients: options.clients,
    seconds: options.seconds,
    tps: Math.round(tps),
    latencyAvgMs: number(/^latency average = ([\d.]+) ms/m),
    transactions: number(/^number of transactions actually processed: (\d+)/m) ?? 0,
    failed: number(/^number of failed transactions: (\d+)/m) ?? 0,
  };
}
