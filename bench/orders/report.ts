import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { median } from '../lib/stats.ts';
import type { OrderBreakdown } from './breakdown.ts';
import { medianLadderKnee, type OrderStep } from './figures.ts';
import type { LadderMode, OrdersResults } from './run-orders.ts';

const START = '<!-- bench:orders:start -->';
const END = '<!-- bench:orders:end -->';

const MODE_TITLE: Record<LadderMode, string> = {
  postgres: 'Split processes on PostgreSQL (API + gateway + Redis)',
  embedded: 'Embedded mode (`npm start`: one process, PGlite, in-process broker)',
  'two-api': 'Two API processes on one PostgreSQL (+ gateway + Redis)',
};

const num = (n: number | null | undefined, digits = 1) =>
  n === null || n === undefined || Number.isNaN(n)
    ? '—'
    : n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
const never = (n: number | null) => (n === null ? '∞' : num(n));

/**
 * "median (a / b / c)" over the repetitions; one repetition shows just its value. A null ranks
 * highest (a latency that never came) or, with `nullIs: 'low'`, lowest (no knee at all).
 */
function withReps(
  values: (number | null)[],
  show: (n: number | null) => string = never,
  nullIs: 'high' | 'low' = 'high',
): string {
  if (values.length === 1) return show(values[0]!);
  const missing = nullIs === 'high' ? Number.POSITIVE_INFINITY : Number.NEGATIVE_INFINITY;
  const finite = values.map((v) => (v === null ? missing : v));
  const m = median(finite);
  return `${show(Number.isFinite(m) ? m : null)} (${values.map(show).join(' / ')})`;
}

function integrity(steps: OrderStep[]): string {
  const errors = new Map<string, number>();
  let lost = 0;
  let dup = 0;
  let ooo = 0;
  let dropped = 0;
  for (const s of steps) {
    for (const [k, v] of Object.entries(s.errors)) errors.set(k, (errors.get(k) ?? 0) + v);
    lost += s.lost;
    dup = Math.max(dup, s.duplicated);
    ooo = Math.max(ooo, s.outOfOrder);
    dropped = Math.max(dropped, s.socketsDropped);
  }
  const parts = [...errors].map(([k, v]) => `${k} ×${v}`);
  if (lost) parts.push(`${lost} lost`);
  if (dup) parts.push(`${dup} duplicated`);
  if (ooo) parts.push(`${ooo} out of order`);
  if (dropped) parts.push(`${dropped} sockets dropped`);
  return parts.length ? parts.join(', ') : 'none';
}

function ladderTable(results: OrdersResults, mode: LadderMode): string[] {
  const runs = results.ladders.filter((l) => l.mode === mode);
  if (runs.length === 0) return [];
  const lines = [`### ${MODE_TITLE[mode]}`, ''];
  const knees = runs.map((r) => r.knee);
  const rate = (k: number | null) => (k === null ? 'none' : `${num(k, 0)}`);
  lines.push(
    `**Knee (highest rate with end-to-end p99 < ${results.params.p99LimitMs} ms, no error, nothing lost): ` +
      `${withReps(knees, rate, 'low')} orders/s.** ` +
      (runs.length > 1
        ? `Read strictly over the repetitions together (every step up to it with a median p99 < ` +
          `${results.params.p99LimitMs} ms): ${rate(
            medianLadderKnee(
              runs.map((r) => r.steps),
              results.params.p99LimitMs,
            ),
          )} orders/s. `
        : '') +
      `Sustained (every order 201 and delivered, p99 < ${num(results.params.sustainedP99Ms, 0)} ms): ` +
      `${withReps(
        runs.map((r) => r.sustained ?? null),
        rate,
        'low',
      )} orders/s.`,
    '',
  );
  for (const failed of runs.filter((r) => !r.ok)) lines.push(`- rep ${failed.rep} failed: ${failed.error}`, '');
  const rates = [...new Set(runs.flatMap((r) => r.steps.map((s) => s.rate)))].sort((a, b) => a - b);
  lines.push(
    '| orders/s (sent) | HTTP 201 p50 / p99 ms | POST → event p50 ms | POST → event p99 ms ' +
      '| errors, lost, dup, order | API CPU %, µs/order | API run-queue wait % | PostgreSQL CPU %, µs/order ' +
      '| gateway CPU % |',
    '|---|---|---|---|---|---|---|---|---|',
  );
  for (const rate of rates) {
    const steps = runs.flatMap((r) => r.steps.filter((s) => s.rate === rate));
    const m = (pick: (s: OrderStep) => number | null) => {
      const v = steps.map(pick).map((x) => (x === null ? Number.POSITIVE_INFINITY : x));
      const r = median(v);
      return Number.isFinite(r) ? r : null;
    };
    const pct = (pick: (s: OrderStep) => number | null) => `${num(m(pick), 0)} %`;
    const cpu = (pctOf: (s: OrderStep) => number | null, perOrder: (s: OrderStep) => number | null) =>
      `${pct(pctOf)}, ${num(m(perOrder), 0)}`;
    const embedded = mode === 'embedded';
    const cells = [
      `${num(rate, 0)} (${num(
        m((s) => s.achievedRate),
        0,
      )})`,
      `${never(m((s) => s.httpP50))} / ${never(m((s) => s.httpP99))}`,
      withReps(steps.map((s) => s.e2eP50)),
      withReps(steps.map((s) => s.e2eP99)),
      integrity(steps),
      cpu(
        (s) => s.apiCpuPct,
        (s) => s.apiCpuUsPerOrder,
      ),
      pct((s) => s.apiWaitPct ?? null),
      embedded
        ? 'in the process'
        : cpu(
            (s) => s.dbCpuPct,
            (s) => s.dbCpuUsPerOrder,
          ),
      embedded ? '(same process)' : pct((s) => s.wsCpuPct),
    ];
    lines.push(`| ${cells.join(' | ')} |`);
  }
  lines.push('');
  return lines;
}

function breakdownTable(b: OrderBreakdown): string[] {
  // The rate limit and the price read overlap (two Redis connections): one round trip is waited for.
  // The session comes from the API's cache (the POSTs are timed after each user's first order).
  const rest = b.httpPost - b.redisGet - b.place;
  return [
    '### Where the milliseconds of one order go',
    '',
    `Each piece timed alone, ${b.samples} times one after another on the idle split stand (medians):`,
    '',
    '| piece | ms |',
    '|---|---|',
    `| POST /orders over HTTP, whole | ${num(b.httpPost, 2)} |`,
    `| … per-user rate limit and latest price, at once (a Redis round trip each) | ${num(b.redisGet, 2)} |`,
    '| … the order (`db.orders.place`: a read and a guarded write, two prepared statements, both checking the ' +
      `session) | ${num(b.place, 2)} |`,
    `| … the rest: HTTP round trip, Fastify hooks, validation, JSON, the awaits between | ${num(rest, 2)} |`,
    "| for scale: the bearer token's session lookup (lookup pool), paid by an order only when its session is not " +
      `cached (a session's first order, then once a minute) | ${num(b.sessionLookup, 2)} |`,
    `| for scale: one PostgreSQL round trip (\`select 1\`) | ${num(b.pgRoundTrip, 2)} |`,
    `| for scale: a one-row insert committed alone (round trip + WAL flush) | ${num(b.pgCommit, 2)} |`,
    '',
  ];
}

const ratio = (knee: number | null, tps: number) => (knee === null ? '—' : `${num((100 * knee) / tps, 0)} %`);

export function renderOrders(results: OrdersResults, command: string): string {
  const p = results.params;
  const lines: string[] = [
    START,
    '',
    `## The order path against its SQL`,
    '',
    `Run: \`${command}\`, ${results.startedAt.slice(0, 16).replace('T', ' ')} UTC. ` +
      `${p.users.toLocaleString('en-US')} users, each with a socket on \`orders\`; ` +
      `each rate runs ${p.warmupS} s of warm-up then ${p.measureS} s measured ` +
      '(orders round robin over the users, buys of 0.01 SOL); ' +
      `PostgreSQL ladders: ${p.reps} repetition(s), the others ${p.otherReps}. ` +
      'A missing event counts as infinitely late. CPU is read from `/proc/<pid>/stat` over each measured ' +
      'window until its last event: the API process(es), the gateway, and the PostgreSQL backends of the ' +
      'bench database plus the WAL writer, checkpointer and background writer.',
    '',
  ];
  const pgRuns = results.ladders.filter((l) => l.mode === 'postgres' && l.ok);
  const knee = pgRuns.length ? median(pgRuns.map((l) => l.knee ?? 0)) : null;
  const sustained = pgRuns.length ? median(pgRuns.map((l) => l.sustained ?? 0)) : null;
  const strictKnee = pgRuns.length
    ? medianLadderKnee(
        pgRuns.map((l) => l.steps),
        p.p99LimitMs,
      )
    : null;
  if (results.pgbench.length > 0) {
    lines.push(
      '### Bare SQL (pgbench)',
      '',
      "The same transaction (a filled buy) as a pgbench script at the API's pool size " +
        `(${p.poolSize} clients, -j 2, ${p.pgbenchSeconds} s, prepared, a random user of ` +
        `${p.users.toLocaleString('en-US')}), against a database seeded the same way. ` +
        '`place-order-statements.sql` is the locked transaction as the API first ran it, one statement per step; ' +
        '`place-order-compact.sql` is the same transaction in three statements between BEGIN and COMMIT (the ' +
        "API's path when one user's orders race), the limit the target is set against; " +
        '`place-order-optimistic.sql` is the two statements the API runs now, a read and a guarded write with ' +
        'no BEGIN or COMMIT, without their session probes (bench/orders/).',
      '',
      '| script | TPS | latency avg ms | tradewire knee / TPS | … read strictly / TPS | tradewire sustained / TPS |',
      '|---|---|---|---|---|---|',
    );
    for (const script of [...new Set(results.pgbench.map((r) => r.script))]) {
      const runs = results.pgbench.filter((r) => r.script === script);
      const tps = median(runs.map((r) => r.tps));
      lines.push(
        `| ${script} | ${withReps(
          runs.map((r) => r.tps),
          (n) => num(n, 0),
        )} | ${withReps(runs.map((r) => r.latencyAvgMs))} | ${ratio(knee, tps)} | ${ratio(strictKnee, tps)} | ` +
          `${ratio(sustained, tps)} |`,
      );
    }
    lines.push('');
  }
  if (results.breakdown) lines.push(...breakdownTable(results.breakdown));
  for (const mode of ['postgres', 'two-api', 'embedded'] as LadderMode[]) lines.push(...ladderTable(results, mode));
  for (const note of results.notes) lines.push(`- ${note}`);
  lines.push(END);
  return lines.join('\n');
}

/** Rewrites the order block of docs/benchmarks.md (appended at the end the first time). */
export function writeOrdersReport(results: OrdersResults, root: string, command: string): void {
  const file = join(root, 'docs/benchmarks.md');
  const block = renderOrders(results, command);
  let text = existsSync(file) ? readFileSync(file, 'utf8') : '# Benchmarks\n';
  const start = text.indexOf(START);
  const end = text.indexOf(END);
  if (start !== -1 && end > start) text = `${text.slice(0, start)}${block}${text.slice(end + END.length)}`;
  else text = `${text.trimEnd()}\n\n${block}\n`;
  writeFileSync(file, text);
}
