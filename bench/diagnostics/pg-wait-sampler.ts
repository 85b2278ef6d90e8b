import { appendFileSync } from 'node:fs';
import pg from 'pg';
import { monoMs } from '../lib/clock.ts';

/**
 * Samples pg_stat_activity every few milliseconds and appends each active backend's wait
 * (or "CPU" when it waits on nothing) with the time on the bench's one clock (monoMs, as
 * BENCH_ORDER_TIMELINE and loop-gc-probe.ts), to tell a stall on the
 * server's side from one in the client:
 *
 *   node --import tsx bench/diagnostics/pg-wait-sampler.ts <admin url> <out file> [interval ms]
 */
const [url, out, every = '3'] = process.argv.slice(2);
if (!url || !out) {
  console.error('usage: pg-wait-sampler.ts <admin url> <out file> [interval ms]');
  process.exit(2);
}
const client = new pg.Client({ connectionString: url });
await client.connect();
let stop = false;
process.on('SIGTERM', () => (stop = true));
process.on('SIGINT', () => (stop = true));
const lines: string[] = [];
while (!stop) {
  const at = monoMs().toFixed(1);
  const { rows } = await client.query<{ pid: number; running_ms: number; wait: string; query: string }>(
    `select pid, coalesce(wait_event_type || ':' || wait_event, 'CPU') as wait, state,
            round(extract(epoch from (clock_timestamp() - query_start)) * 1000)::int as running_ms,
            left(regexp_replace(query, '\\s+', ' ', 'g'), 50) as query
       from pg_stat_activity
      where datname not in ('test', 'postgres') and pid <> pg_backend_pid()
        and state = 'active'`,
  );
  for (const r of rows) lines.push(`${at} ${r.pid} ${r.running_ms} ${r.wait} ${r.query}`);
  if (lines.length > 2000) appendFileSync(out, lines.splice(0).join('\n') + '\n');
  await new Promise((resolve) => setTimeout(resolve, Number(every)));
}
appendFileSync(out, lines.join('\n') + '\n');
await client.end();
