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
