import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { LatencyStep } from '../load/scenarios.ts';
import { latencyChart } from './chart.ts';
import type { ServerWindowStats } from '../servers/control.ts';
import type { BenchResults, EndToEndResult, RunRecord } from './results.ts';
import { SERVERS, type ServerName } from './servers.ts';
import { median } from './stats.ts';

/** p99 under this, with nothing lost, counts as "sustained" at a rate. */
export const LATENCY_TARGET_MS = 50;

const START = '<!-- bench:results:start -->';
const END = '<!-- bench:results:end -->';
const COLORS: Record<ServerName, string> = { tradewire: '#1f77b4', naive: '#ff7f0e', socketio: '#2ca02c' };
const SHORT: Record<ServerName, string> = { tradewire: 'tradewire', naive: 'naive broadcast', socketio: 'Socket.IO' };

const fmt = (n: number | null | undefined, digits = 0): string =>
  n === null || n === undefined || Number.isNaN(n)
    ? '—'
    : !Number.isFinite(n)
      ? '∞'
      : n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
const ms = (n: number | null | undefined, digits = 1) => (n === null ? 'never' : fmt(n, digits));
const ratio = (a: number, b: number) => (b === 0 ? (a > 0 ? Number.POSITIVE_INFINITY : Number.NaN) : a / b);
const kib = (bytes: number) => fmt(bytes / 1024, 1);

function okRuns<T>(runs: RunRecord<T>[], server: ServerName): { rep: number; result: T }[] {
  return runs
    .filter((r): r is Extract<RunRecord<T>, { ok: true }> => r.ok && r.server === server)
    .map((r) => ({ rep: r.rep, result: r.result }));
}

function failures<T>(runs: RunRecord<T>[]): string[] {
  return runs
    .filter((r): r is Extract<RunRecord<T>, { ok: false }> => !r.ok)
    .map((r) => `rep ${r.rep} ${SHORT[r.server]}: ${r.error.split('\n')[0]}`);
}

/** Median of values where null means "never" (sorted above every number). */
function medianNullable(values: (number | null)[]): number | null {
  if (values.length === 0) return Number.NaN;
  const sorted = values.map((v) => (v === null ? Number.POSITIVE_INFINITY : v)).sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  const m = sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
  return Number.isFinite(m) ? m : null;
}

/** Highest rate that it, and every lower rate, kept p99 under the target with nothing lost. */
export function sustainedRate(steps: LatencyStep[], rates: number[]): number {
  let best = 0;
  for (const rate of rates) {
    const step = steps.find((s) => s.rate === rate);
    if (!step || step.p99 === null || step.p99 >= LATENCY_TARGET_MS || step.lost > 0) break;
    best = rate;
  }
  return best;
}

function table(header: string[], rows: string[][]): string {
  return [
    `| ${header.join(' | ')} |`,
    `|${header.map((_, i) => (i === 0 ? ' --- ' : ' ---: ')).join('|')}|`,
    ...rows.map((r) => `| ${r.join(' | ')} |`),
  ].join('\n');
}

/** Generator health: CPU %, event-loop lag p99, run-queue wait % (older results have no wait). */
const generatorCell = (g: { cpuPct: number; lagP99Ms: number; waitPct?: number }) =>
  `${fmt(g.cpuPct)}% / ${fmt(g.lagP99Ms, 1)} ms / ${g.waitPct === undefined ? '—' : `${fmt(g.waitPct)}%`}`;
const waitCell = (w: number | undefined) => (w === undefined ? '—' : `${fmt(w)}%`);
/** The server's own event-loop lag p99 / max and longest GC pause over the window, ms. */
const loopCell = (st: ServerWindowStats | undefined) =>
  st === undefined ? '—' : `${fmt(st.lagP99Ms, 1)} / ${fmt(st.lagMaxMs, 1)} / ${fmt(st.gcMaxMs, 1)}`;

interface Verdict {
  target: string;
  figure: string;
  met: boolean | null;
}

export function renderResults(results: BenchResults): { markdown: string; svg: string | null } {
  const servers = results.servers;
  const p = results.params;
  const out: string[] = [];
  const verdicts: Verdict[] = [];
  const has = (s: ServerName) => servers.includes(s);

  // ---- throughput ----
  const throughputMedian = (s: ServerName) =>
    median(okRuns(results.throughput, s).map((r) => r.result.deliveriesPerSec));
  const cpuMedian = (s: ServerName) =>
    median(okRuns(results.throughput, s).map((r) => r.result.serverCpuUsPerDelivery));
  if (results.throughput.length > 0 && has('tradewire')) {
    const tw = throughputMedian('tradewire');
    if (has('naive')) {
      const r = ratio(tw, throughputMedian('naive'));
      verdicts.push({
        target: 'Fan-out throughput ≥ 4× the naive broadcast',
        figure: `${fmt(r, 1)}× (${fmt(tw)} vs ${fmt(throughputMedian('naive'))} deliveries/s)`,
        met: r >= 4,
      });
    }
    if (has('socketio')) {
      const r = ratio(tw, throughputMedian('socketio'));
      verdicts.push({
        target: 'Fan-out throughput ≥ 3× Socket.IO',
        figure: `${fmt(r, 1)}× (${fmt(tw)} vs ${fmt(throughputMedian('socketio'))} deliveries/s)`,
        met: r >= 3,
      });
    }
  }

  // ---- latency ----
  const rates = p.latency.rates;
  const sustained = (s: ServerName) => median(okRuns(results.latency, s).map((r) => sustainedRate(r.result, rates)));
  const stepOf = (steps: LatencyStep[], rate: number) => steps.find((x) => x.rate === rate);
  // A step a run did not reach (it stopped past the knee) is left out, not counted as "never".
  const latencyMedian = (s: ServerName, rate: number, key: 'p50' | 'p99' | 'max') =>
    medianNullable(
      okRuns(results.latency, s).flatMap((r) => {
        const step = stepOf(r.result, rate);
        return step ? [step[key]] : [];
      }),
    );
  if (results.latency.length > 0 && has('tradewire') && has('socketio')) {
    const tw = sustained('tradewire');
    const sio = sustained('socketio');
    const r = ratio(tw, sio);
    const top = tw >= Math.max(...rates) ? `; ${fmt(tw)}/s is the highest rate tested` : '';
    verdicts.push({
      target: `Highest rate with p99 < ${LATENCY_TARGET_MS} ms at 1,000 subscribers ≥ 3× Socket.IO's`,
      figure:
        tw === 0 && sio === 0
          ? `neither kept p99 under ${LATENCY_TARGET_MS} ms even at ${rates[0]}/s in this run`
          : sio === 0
            ? `${fmt(tw)} events/s vs none: Socket.IO missed ${LATENCY_TARGET_MS} ms already at ${rates[0]}/s${top}`
            : `${fmt(tw)} vs ${fmt(sio)} events/s (${fmt(r, 1)}×${top})`,
      met: tw === 0 ? false : r >= 3,
    });
  }
  if (results.latency.length > 0 && has('tradewire')) {
    const tw = sustained('tradewire');
    verdicts.push({
      target:
        `Fan-out latency knee: tradewire ≥ 1,000 events/s × ` +
        `${fmt(p.latency.clients)} subscribers with p99 < ${LATENCY_TARGET_MS} ms`,
      figure: `${fmt(tw)} events/s${tw >= Math.max(...rates) ? ' (the highest rate tested)' : ''}`,
      met: tw >= 1000,
    });
  }

  // ---- private ----
  const privateRuns = (s: ServerName, users: number) =>
    okRuns(results.private, s).filter((r) => r.result.users === users);
  const privateMedian = (s: ServerName, users: number, key: 'p50' | 'p99' | 'max') =>
    medianNullable(privateRuns(s, users).map((r) => r.result[key]));
  if (results.private.length > 0 && has('tradewire')) {
    const small = Math.min(...p.private.users);
    const large = Math.max(...p.private.users);
    const a = privateMedian('tradewire', small, 'p99');
    const b = privateMedian('tradewire', large, 'p99');
    const r = a === null || b === null ? Number.NaN : b / a;
    verdicts.push({
      target: `Private routing: p99 at ${fmt(large)} users ≤ 1.25× p99 at ${fmt(small)} users`,
      figure: `${ms(b, 2)} ms vs ${ms(a, 2)} ms (${fmt(r, 2)}×)`,
      met: Number.isNaN(r) ? false : r <= 1.25,
    });
    const wrong = results.private.reduce((sum, run) => sum + (run.ok ? run.result.wrongUser : 0), 0);
    const wrongTw = results.private.reduce(
      (sum, run) => sum + (run.ok && run.server === 'tradewire' ? run.result.wrongUser : 0),
      0,
    );
    verdicts.push({
      target: 'Private routing: wrong-user deliveries = 0',
      figure: `${wrongTw} for tradewire (${wrong} over all servers and runs)`,
      met: wrongTw === 0,
    });
  }

  // ---- idle ----
  const idleMedian = (s: ServerName, key: 'rssPerConnection' | 'heapPerConnection') =>
    median(okRuns(results.idle, s).map((r) => r.result[key]));
  if (results.idle.length > 0 && has('tradewire') && has('socketio')) {
    const tw = idleMedian('tradewire', 'rssPerConnection');
    const sio = idleMedian('socketio', 'rssPerConnection');
    const r = tw / sio;
    verdicts.push({
      target: 'Idle memory per connection ≤ 0.6× Socket.IO (every gateway feature on)',
      figure: `${kib(tw)} KiB vs ${kib(sio)} KiB RSS (${fmt(r, 2)}×)`,
      met: r <= 0.6,
    });
  }

  // ---- header ----
  const m = results.machine;
  out.push(
    START,
    '',
    `_Generated by \`${results.command}\` on ${results.startedAt.slice(0, 10)} ` +
      `(${results.startedAt.slice(11, 16)}–${(results.finishedAt ?? '').slice(11, 16)} UTC). ` +
      `Everything between the markers is rewritten by each full run; ` +
      `\`npm run bench -- --report bench/results/full-latest.json\` rewrites it from the saved results._`,
    '',
    '## Targets, medians of this run',
    '',
    table(
      ['Target', 'This run', 'Met'],
      verdicts.map((v) => [v.target, v.figure, v.met === null ? '—' : v.met ? '**yes**' : '**NO**']),
    ),
    '',
    `The quick mode (\`npm run bench -- --quick\`, CI) ` +
      `checks the throughput ratio against the naive broadcast only, and fails below 2×.`,
    '',
    '## Setup',
    '',
    table(
      ['', ''],
      [
        ['Machine', `${m.cpu}, ${m.cores} cores, ${m.memoryGiB} GiB, Linux ${m.kernel}`],
        [
          'Load average (1 min) at start / end',
          `${fmt(m.loadAtStart, 2)} / ${fmt(m.loadAtEnd, 2)} — other work on the machine; see "Noise"`,
        ],
        ['Node', m.node],
        ['Redis', `redis-server ${m.redisServer} (the benchmark's own, no persistence)`],
        [
          'Packages',
          Object.entries(m.packages)
            .map(([k, v]) => `${k} ${v}`)
            .join(', '),
        ],
        ['Commit', m.commit],
        ['Command', `\`${results.command}\``],
        [
          'Placement',
          'server under test alone on CPU 0 (`taskset -c 0`); ' +
            'load generator (receiving thread + publisher thread) and redis-server on CPU 1',
        ],
        [
          'Repetitions',
          `${p.reps}` +
            `${p.private.reps && p.private.reps > p.reps ? ` (private routing: ${p.private.reps})` : ''}` +
            `, interleaved: each repetition runs every server once per scenario, in a rotated order`,
        ],
      ],
    ),
    '',
    'Servers:',
    '',
    ...servers.map((s) => `- **${SERVERS[s].label}** — \`${SERVERS[s].entry}\``),
    '',
  );
  if (results.notes.length > 0) out.push('Notes on this run:', '', ...results.notes.map((n) => `- ${n}`), '');

  // ---- throughput section ----
  if (results.throughput.length > 0) {
    const tp = p.throughput;
    out.push(
      '## Fan-out throughput',
      '',
      `${fmt(tp.clients)} clients subscribed to \`prices\`; ` +
        `the publisher keeps ${tp.window} events in flight ahead of the slowest client (closed loop), ` +
        `so the server is always busy and never buried. ` +
        `${fmt(tp.warmupMs / 1000)} s warm-up, then ${fmt(tp.measureMs / 1000)} s measured. ` +
        `Server CPU is user + system time of the whole server process (all threads) from \`/proc/<pid>/stat\`.`,
      '',
      table(
        ['Server', 'Deliveries/s (median)', 'Server CPU µs/delivery (median)', 'vs naive', 'vs Socket.IO'],
        servers.map((s) => [
          SHORT[s],
          fmt(throughputMedian(s)),
          fmt(cpuMedian(s), 2),
          has('naive') ? `${fmt(ratio(throughputMedian(s), throughputMedian('naive')), 2)}×` : '—',
          has('socketio') ? `${fmt(ratio(throughputMedian(s), throughputMedian('socketio')), 2)}×` : '—',
        ]),
      ),
      '',
      'Every run:',
      '',
      table(
        [
          'Rep',
          'Server',
          'Deliveries/s',
          'CPU µs/delivery',
          'Server CPU %',
          'Server wait %',
          'Server loop',
          'Events',
          'Lost',
          'Duplicated',
          'Disconnected',
          'Generator',
        ],
        results.throughput.map((r) =>
          r.ok
            ? [
                String(r.rep),
                SHORT[r.server],
                fmt(r.result.deliveriesPerSec),
                fmt(r.result.serverCpuUsPerDelivery, 2),
                fmt(r.result.serverCpuPct),
                waitCell(r.result.serverWaitPct),
                loopCell(r.result.server),
                fmt(r.result.events),
                fmt(r.result.lost),
                fmt(r.result.duplicated),
                fmt(r.result.disconnected),
                generatorCell(r.result.generator),
              ]
            : [String(r.rep), SHORT[r.server], 'failed', '', '', '', '', '', '', '', '', ''],
        ),
      ),
      '',
      ...failures(results.throughput).map((f) => `- failed: ${f}`),
      '',
    );
  }

  // ---- latency section ----
  let svg: string | null = null;
  if (results.latency.length > 0) {
    const lp = p.latency;
    svg = latencyChart(
      `Fan-out latency, ${fmt(lp.clients)} subscribers`,
      rates,
      servers.map((s) => ({
        label: SHORT[s],
        color: COLORS[s],
        p99: rates.map((rate) => latencyMedian(s, rate, 'p99')),
        p50: rates.map((rate) => latencyMedian(s, rate, 'p50')),
      })),
      LATENCY_TARGET_MS,
    );
    out.push(
      '## Fan-out latency',
      '',
      `${fmt(lp.clients)} clients subscribed to \`prices\`, one connection set per server and repetition, ` +
        `the rate raised step by step: ${rates.join(', ')} events/s, ` +
        `each ${lp.warmupS} s warm-up + ${lp.measureS} s measured${
          lp.minEvents
            ? ` and at least ${fmt(lp.minEvents)} measured events (${rates
                .filter((r) => r * lp.measureS < lp.minEvents!)
                .map((r) => `${fmt(lp.minEvents! / r, 0)} s at ${r}/s`)
                .join(', ')}), so that one late event cannot decide a low rate's p99 alone`
            : ''
        }; latency is publish (just before PUBLISH to Redis) → the client's receipt, ` +
        `on one monotonic clock, over every delivery of the measured events. ` +
        `A step that does not drain its backlog within ${fmt(lp.drainTimeoutMs / 1000)} s ends the run ` +
        `(higher rates count as not sustained)${
          lp.stopAboveP99Ms === undefined
            ? ''
            : `; so does a server past its knee: two steps in a row with p99 ≥ ${fmt(lp.stopAboveP99Ms)} ms, ` +
              `or one with p99 ≥ ${fmt(lp.stopAboveP99Ms * 10)} ms ("—": a rate it did not reach)`
        }. Deliveries that never arrived count as infinitely late ("never"). ` +
        `The knee is the highest rate that, with every lower rate, ` +
        `kept p99 under ${LATENCY_TARGET_MS} ms with nothing lost (median over the repetitions).`,
      '',
      '![Latency against event rate](benchmarks-latency.svg)',
      '',
      table(
        [
          'Server',
          ...rates.map((r) => `${r}/s p50 / p99 / max (ms)`),
          `Highest rate with p99 < ${LATENCY_TARGET_MS} ms`,
        ],
        servers.map((s) => [
          SHORT[s],
          ...rates.map(
            (rate) =>
              `${ms(latencyMedian(s, rate, 'p50'))} / ` +
              `${ms(latencyMedian(s, rate, 'p99'))} / ${ms(latencyMedian(s, rate, 'max'))}`,
          ),
          `${fmt(sustained(s))}/s`,
        ]),
      ),
      '',
      'Every run (latencies in ms):',
      '',
      table(
        [
          'Rep',
          'Server',
          'Rate',
          'p50',
          'p99',
          'max',
          'Delivered / expected',
          'Lost',
          'Server CPU %',
          'Server wait %',
          'Server loop',
          'Generator',
        ],
        results.latency.flatMap((r) =>
          r.ok
            ? r.result.map((st) => [
                String(r.rep),
                SHORT[r.server],
                String(st.rate),
                ms(st.p50, 2),
                ms(st.p99, 2),
                ms(st.max, 2),
                `${fmt(st.delivered)} / ${fmt(st.expected)}`,
                fmt(st.lost),
                fmt(st.serverCpuPct),
                waitCell(st.serverWaitPct),
                loopCell(st.server),
                generatorCell(st.generator),
              ])
            : [[String(r.rep), SHORT[r.server], 'failed', '', '', '', '', '', '', '', '', '']],
        ),
      ),
      '',
      ...failures(results.latency).map((f) => `- failed: ${f}`),
      '',
    );
  }

  // ---- private section ----
  if (results.private.length > 0) {
    const pp = p.private;
    out.push(
      '## Private routing',
      '',
      `N authenticated users, one connection each, subscribed to \`orders\`; ` +
        `\`order_filled\` events to random users at ${pp.rate}/s, ` +
        `${pp.warmupS} s warm-up + ${pp.measureS} s measured. ` +
        `A delivery is wrong-user when the event's \`userId\` is not the socket's user ` +
        `(or not the user the publisher addressed); ` +
        `lost and duplicated are counted per event (each has exactly one recipient).`,
      '',
      table(
        [
          'Server',
          ...pp.users.map((u) => `${fmt(u)} users p50 / p99 / max (ms)`),
          'p99 ratio',
          'Wrong-user (all runs)',
        ],
        servers.map((s) => {
          const small = privateMedian(s, Math.min(...pp.users), 'p99');
          const large = privateMedian(s, Math.max(...pp.users), 'p99');
          return [
            SHORT[s],
            ...pp.users.map(
              (u) =>
                `${ms(privateMedian(s, u, 'p50'), 2)} / ` +
                `${ms(privateMedian(s, u, 'p99'), 2)} / ${ms(privateMedian(s, u, 'max'), 2)}`,
            ),
            small === null || large === null ? '—' : `${fmt(large / small, 2)}×`,
            fmt(okRuns(results.private, s).reduce((sum, r) => sum + r.result.wrongUser, 0)),
          ];
        }),
      ),
      '',
      'Every run:',
      '',
      table(
        [
          'Rep',
          'Server',
          'Users',
          'p50',
          'p99',
          'max',
          'Delivered / expected',
          'Wrong-user',
          'Lost',
          'Duplicated',
          'Server wait %',
          'Server loop',
          'Generator',
        ],
        results.private.map((r) =>
          r.ok
            ? [
                String(r.rep),
                SHORT[r.server],
                fmt(r.result.users),
                ms(r.result.p50, 2),
                ms(r.result.p99, 2),
                ms(r.result.max, 2),
                `${fmt(r.result.delivered)} / ${fmt(r.result.expected)}`,
                fmt(r.result.wrongUser),
                fmt(r.result.lost),
                fmt(r.result.duplicated),
                waitCell(r.result.serverWaitPct),
                loopCell(r.result.server),
                generatorCell(r.result.generator),
              ]
            : [String(r.rep), SHORT[r.server], 'failed', '', '', '', '', '', '', '', '', '', ''],
        ),
      ),
      '',
      ...failures(results.private).map((f) => `- failed: ${f}`),
      '',
    );
  }

  // ---- idle section ----
  if (results.idle.length > 0) {
    const ip = p.idle;
    out.push(
      '## Idle memory',
      '',
      `${fmt(ip.clients)} connections subscribed to \`prices\`, then idle. ` +
        `The server's memory is read over its control channel after two full GCs (\`--expose-gc\`), ` +
        `${fmt(ip.settleMs / 1000)} s after start and again ` +
        `${fmt(ip.settleMs / 1000)} s after the last client subscribed; ` +
        `per connection = the difference / ${fmt(ip.clients)}.`,
      '',
      table(
        ['Server', 'RSS per connection (median)', 'JS heap per connection (median)', 'vs Socket.IO (RSS)'],
        servers.map((s) => [
          SHORT[s],
          `${kib(idleMedian(s, 'rssPerConnection'))} KiB`,
          `${kib(idleMedian(s, 'heapPerConnection'))} KiB`,
          has('socketio')
            ? `${fmt(idleMedian(s, 'rssPerConnection') / idleMedian('socketio', 'rssPerConnection'), 2)}×`
            : '—',
        ]),
      ),
      '',
      'Every run:',
      '',
      table(
        [
          'Rep',
          'Server',
          'RSS before → with clients (MiB)',
          'Heap before → with clients (MiB)',
          'RSS/connection',
          'Heap/connection',
        ],
        results.idle.map((r) =>
          r.ok
            ? [
                String(r.rep),
                SHORT[r.server],
                `${fmt(r.result.rssBefore / 2 ** 20, 1)} → ${fmt(r.result.rssAfter / 2 ** 20, 1)}`,
                `${fmt(r.result.heapBefore / 2 ** 20, 1)} → ${fmt(r.result.heapAfter / 2 ** 20, 1)}`,
                `${fmt(r.result.rssPerConnection)} B`,
                `${fmt(r.result.heapPerConnection)} B`,
              ]
            : [String(r.rep), SHORT[r.server], 'failed', '', '', ''],
        ),
      ),
      '',
      ...failures(results.idle).map((f) => `- failed: ${f}`),
      '',
    );
  }

  // ---- end to end ----
  if (results.e2e.length > 0) {
    const ep = p.e2e;
    const runs = okRuns<EndToEndResult>(results.e2e, 'tradewire');
    out.push(
      '## End to end',
      '',
      `\`POST /orders\` (market buy) → \`order_filled\` at the user's socket, through the real processes: ` +
        `\`apps/server/src/main.ts api\` and \`… ws\` (CPU 0), ` +
        `sharing the benchmark's Redis and the seeded PostgreSQL database; ` +
        `${ep.users} users each with a socket on \`orders\`, ${ep.rate} orders/s spread over them, ` +
        `${ep.warmupS} s warm-up + ${ep.measureS} s measured. ` +
        `The clock starts when the request is written and ` +
        `stops when the socket receives the fill ` +
        `(the outbox relay publishes it after the transaction commits).`,
      '',
      table(
        [
          'Rep',
          'Orders',
          'p50 (ms)',
          'p99 (ms)',
          'max (ms)',
          'HTTP 201 p50 / p99 (ms)',
          'Fills delivered',
          'HTTP errors',
          'Wrong-user',
        ],
        results.e2e.map((r) =>
          r.ok
            ? [
                String(r.rep),
                fmt(r.result.orders),
                ms(r.result.p50, 1),
                ms(r.result.p99, 1),
                ms(r.result.max, 1),
                `${ms(r.result.httpP50, 1)} / ${ms(r.result.httpP99, 1)}`,
                fmt(r.result.delivered),
                Object.entries(r.result.httpErrors)
                  .map(([k, v]) => `${k}: ${v}`)
                  .join(', ') || '0',
                fmt(r.result.wrongUser),
              ]
            : [String(r.rep), 'failed', '', '', '', '', '', '', ''],
        ),
      ),
      '',
      runs.length > 0
        ? `Median: p50 ${ms(medianNullable(runs.map((r) => r.result.p50)), 1)} ms, ` +
            `p99 ${ms(medianNullable(runs.map((r) => r.result.p99)), 1)} ms.`
        : '',
      '',
      ...failures(results.e2e).map((f) => `- failed: ${f}`),
      '',
    );
  }

  // ---- profiles ----
  if (results.profiles.length > 0) {
    out.push(
      '## Gateway profile (`--profile`)',
      '',
      'Self time of the top functions in the gateway process (`node --cpu-prof`), per scenario:',
      '',
    );
    for (const prof of results.profiles) {
      out.push(
        `**${prof.scenario}** (\`${prof.file}\`):`,
        '',
        table(
          ['Self %', 'Function'],
          prof.top.map((t) => [fmt(t.selfPct, 1), `\`${t.name}\``]),
        ),
        '',
      );
    }
  }
  out.push(END);
  return { markdown: out.join('\n'), svg };
}

const PREAMBLE = `# Benchmarks

How fast tradewire's gateway (\`apps/ws\`) delivers events, measured against the design's
broadcast as written and against Socket.IO 4 with its Redis adapter, in one session on one
machine. Run it with \`npm run bench\` (full, about 55 minutes) or \`npm run bench -- --quick\`
(the CI check, under 2 minutes). How the benchmark works is at the end of this page.

`;

/** Writes docs/benchmarks.md (keeping the hand-written text around the generated block) and the chart. */
export function writeReport(results: BenchResults, root: string): void {
  const { markdown, svg } = renderResults(results);
  const file = join(root, 'docs/benchmarks.md');
  let text = existsSync(file) ? readFileSync(file, 'utf8') : `${PREAMBLE}${START}\n${END}\n`;
  const a = text.indexOf(START);
  const b = text.indexOf(END);
  text =
    a === -1 || b === -1
      ? `${text.trimEnd()}\n\n${markdown}\n`
      : `${text.slice(0, a)}${markdown}${text.slice(b + END.length)}`;
  writeFileSync(file, text);
  if (svg) writeFileSync(join(root, 'docs/benchmarks-latency.svg'), svg);
}

export { fmt as formatNumber, ms as formatMs };
