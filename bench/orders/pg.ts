import pg from 'pg';
import { processCpuMicros } from '../lib/proc-stat.ts';
import { ADMIN_URL } from '../lib/scratch-database.ts';

/**
 * CPU of the PostgreSQL processes that work for one database: its backends (and autovacuum
 * workers), plus the cluster's background writers (WAL writer, checkpointer, background
 * writer), which the database's commits keep busy. Read from /proc, so the figure counts what
 * the kernel charged, waits excluded.
 */
export class PostgresCpu {
  readonly #client: pg.Client;
  readonly #database: string;

  private constructor(client: pg.Client, database: string) {
    this.#client = client;
    this.#database = database;
  }

  static async open(database: string): Promise<PostgresCpu> {
    const client = new pg.Client({ connectionString: ADMIN_URL, connectionTimeoutMillis: 3000 });
    await client.connect();
    return new PostgresCpu(client, database);
  }

  /** CPU µs so far of each process that works for the database, by PID. */
  async sample(): Promise<Map<number, number>> {
    const { rows } = await this.#client.query<{ pid: number }>(
      `select pid from pg_stat_activity
        where datname = $1
           or backend_type in ('walwriter', 'checkpointer', 'background writer')`,
      [this.#database],
    );
    const cpu = new Map<number, number>();
    for (const { pid } of rows) {
      try {
        cpu.set(pid, processCpuMicros(pid));
      } catch {
        // Gone between the query and the read.
      }
    }
    return cpu;
  }

  close(): Promise<void> {
    return this.#client.end();
  }
}

/** CPU µs spent between two samples; a process first seen in `after` counts from its start. */
export function cpuBetween(before: Map<number, number>, after: Map<number, number>): number {
  let total = 0;
  for (const [pid, us] of after) total += us - (before.get(pid) ?? 0);
  return total;
}

export interface WalReadiness {
  /** WAL segment files before. */
  before: number;
  /** Segments ahead of the one being written, ready to be written without being created. */
  ready: number;
  ms: number;
}

/**
 * Leaves the server with `segments` WAL segments ready ahead of the one being written, as a
 * server that has been taking writes has them: each checkpoint renames the segments it no
 * longer needs into the next ones. A server that has not (a fresh cluster, one that has been
 * idle while its checkpoints removed the spares) creates a new 16 MiB segment whenever one
 * fills, zero-filling and syncing it while every commit waits: 50–80 ms on this machine, one
 * every few seconds at 2,000 orders/s, enough to fail a ladder step on its own
 * (docs/benchmarks.md, "The WAL's spare segments").
 *
 * Switching segments with a record in each uses up the spares and makes the missing ones;
 * the checkpoint then recycles them all as spares (it keeps as many as the WAL written since
 * the last checkpoint, up to max_wal_size). Needs a superuser (pg_switch_wal, CHECKPOINT).
 */
export async function readyWalSegments(segments: number): Promise<WalReadiness> {
  const started = Date.now();
  const client = new pg.Client({ connectionString: ADMIN_URL, connectionTimeoutMillis: 3000 });
  await client.connect();
  try {
    const files = async () => {
      const { rows } = await client.query<{ name: string; current: string }>(
        `select name, pg_walfile_name(pg_current_wal_lsn()) as current
           from pg_ls_waldir() where name ~ '^[0-9A-F]{24}$'`,
      );
      return { names: new Set(rows.map((r) => r.name)), current: rows[0]?.current ?? '' };
    };
    const before = (await files()).names.size;
    for (let n = 0; n < segments; n++) {
      await client.query(`select pg_logical_emit_message(false, 'bench', 'x')`);
      await client.query('select pg_switch_wal()');
    }
    await client.query('checkpoint');
    const after = await files();
    const ready = [...after.names].filter((name) => name > after.current).length;
    return { before, ready, ms: Date.now() - started };
  } finally {
    await client.end();
  }
}
