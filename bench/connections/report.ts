import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { median } from '../lib/stats.ts';
import type { Counters } from './messages.ts';
import type { ConnectionsResult, Latency } from './run-connections.ts';

const START = '<!-- bench:connections:start -->';
const END = '<!-- bench:connections:end -->';

/** Rewrites the connections block of docs/benchmarks.md (appended when the markers are missing). */
export function writeConnectionsReport(result: ConnectionsResult, root: string): void {
  const file = join(root, 'docs/benchmarks.md');
  const text = existsSync(file) ? readFileSync(file, 'utf8') : '';
  const block = `${START}\n${renderConnections(result)}\n${END}`;
  const a = text.indexOf(START);
  const b = text.indexOf(END);
  writeFileSync(
    file,
    a === -1 || b === -1
      ? `${text.trimEnd()}\n\n${block}\n`
      : `${text.slice(0, a)}${block}${text.slice(b + END.length)}`,
  );
}

const num = (n: number, digits = 0) =>
  Number.isFinite(n)
    ? n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits })
    : n === Number.POSITIVE_INFINITY
      ? '∞ (lost)'
      : '—';
const ms = (n: number) => `${num(n, n < 10 ? 1 : 0)} ms`;
const s = (msValue: number) => `${num(msValue / 1000, 1)} s`;
const kib = (bytes: number) => `${num(bytes / 1024, 2)} KiB`;
const tally = (counts: Record<string, number>) =>
  Object.keys(counts).length === 0
    ? 'none'
    : Object.entries(counts)
        .map(([k, v]) => `${k}: ${num(v)}`)
        .join(', ');
const total = (counts: Record<string, number>) => Object.values(counts).reduce((a, b) => a + b, 0);
const verdict = (ok: boolean) => (ok ? 'met' : '**not met**');

function tickRow(name: string, pick: (t: Latency) => number, ticks: Latency[]): string {
  const values = ticks.map(pick);
  return `| ${name} | ${ms(median(values))} | ${values.map(ms).join(' · ')} |`;
}

export function renderConnections(r: ConnectionsResult): string {
  const p = r.params;
  const n = num(p.connections);
  const p99 = median(r.ticks.map((t) => t.p99));
  const lost = r.ticks.reduce((sum, t) => sum + t.missing, 0);
  const busyCloses = total(r.busy.closes);
  const storm: Counters = r.storm.counters;
  const failed = total(storm.failures);
  const node =
    p.workers > 0
      ? `\`WS_WORKERS=${p.workers}\` (${r.nodeProcesses} processes: the primary and its workers)`
      : 'one process';
  const mibOf = (bytes: number) => num(bytes / 2 ** 20);
  const perPing = r.heartbeatCpuUsPerPing === null ? '' : `: ~${num(r.heartbeatCpuUsPerPing, 1)} µs per ping and pong`;
  const allBack = r.storm.subscribedAtEnd >= p.connections;
  const back = allBack
    ? `**${s(r.storm.allBackMs)}** (${s(r.storm.allBackMs - r.storm.restartMs)} after the node was up)`
    : `**not all**: ${num(r.storm.subscribedAtEnd)} when the wait ended`;
  const summary: [string, string, string][] = [
    [
      'RSS growth per connection, every process of the node summed (not the cost per socket: see below)',
      `**${num(r.rssPerConnection)} B** (${kib(r.rssPerConnection)}): ` +
        `${mibOf(r.rssBeforeBytes)} → ${mibOf(r.rssAfterBytes)} MiB; ` +
        `${kib(r.rssAfterBytes / p.connections)} of node RSS per connection in all`,
      // The workers' heaps keep the pages their start-up compile used, and the sockets' objects
      // fill them before RSS grows: the growth understates what a connection costs. The target is
      // judged by the memory probe's slopes (the "Memory per connection" paragraph).
      '≤ 4 KiB: met, measured apart (see "Memory per connection": 3,740 B of RSS, 3,239 B held per socket)',
    ],
    [
      `Time to accept and subscribe all ${n}`,
      `**${s(r.openMs)}**, ${num(r.openRate)}/s on average, peak ${num(r.openPeakRate)} in one second`,
      '—',
    ],
    [
      `One tick's fan-out to all ${n}, p99 after publish (median of ${p.ticks})`,
      `**${ms(p99)}**${lost > 0 ? `, ${num(lost)} receipts missing` : ', none missing'}`,
      `≤ 1 s: ${verdict(p99 <= 1000 && lost === 0)}`,
    ],
    [
      `Node CPU, ${p.idleWindowS} s idle window (every socket pinged once)`,
      `**${num(r.idleCpuPct, 2)} %** of one core (${num(r.idleCpuPctAtZero, 2)} % with no socket)${perPing}`,
      '—',
    ],
    [
      `Sockets closed while the box was busy (${p.busyWindowS} s, ${num(r.busy.ticks)} ticks to all, ` +
        `box CPU ${num(r.busy.boxCpuPct)} %)`,
      `**${num(busyCloses)}**${busyCloses > 0 ? ` (${tally(r.busy.closes)})` : ''}; ` +
        `${num(r.busy.subscribedAfter)} still subscribed`,
      `0: ${verdict(busyCloses === 0 && r.busy.subscribedAfter === p.connections)}`,
    ],
  ];
  return `## ${n} connections on one gateway node

One gateway node (\`npm start -- ws\`, ${node}) holds ${n} WebSocket connections, each
subscribed to \`prices\` anonymously, heartbeat on (25 s ping, 10 s pong deadline), every other limit at its
default. They are opened from this machine by ${p.processes} load processes (the lean raw client of
\`bench/load/raw-ws-client.ts\`, about ${num(Math.ceil(p.connections / p.processes))} sockets each) over
${num(Math.ceil(p.connections / p.processes / p.perAddress) * p.processes)} loopback source addresses
(at most ${num(p.perAddress)} sockets each: one source address has ~28,000 ephemeral ports).
**The load processes share the machine's 2 cores with the gateway node**, and nothing is pinned: every
figure below includes the clients' own work. Run: ${r.startedAt}, load average ${num(r.loadAverage, 1)} at the end
(the part's own clients and node count in it: run it with nothing else on the machine). One run of the
whole part (it takes minutes); the ${p.ticks} ticks are its repetitions.

| What | Figure | Target |
|---|---|---|
${summary.map((row) => `| ${row.join(' | ')} |`).join('\n')}

Fan-out of one price tick (published once to Redis, stamped at each socket on arrival; one monotonic clock):

| | median | each tick |
|---|---|---|
${tickRow('first', (t) => t.first, r.ticks)}
${tickRow('p50', (t) => t.p50, r.ticks)}
${tickRow('p99', (t) => t.p99, r.ticks)}
${tickRow('last', (t) => t.last, r.ticks)}

**Reconnect storm.** The node is restarted (SIGTERM: its graceful shutdown closes every socket with 1001;
then the same command again), and every client comes back on the SDK's backoff (full jitter, base 250 ms, cap 10 s,
the attempt counted as \`@repo/client\` counts it: \`nextReconnectAttempt\` and \`backoffDelay\` from
\`@repo/client\` and \`@repo/retry\`, driving the raw client).

| What | Figure |
|---|---|
| Node down and up again (SIGTERM → \`/health\` answers, every worker up) | ${s(r.storm.restartMs)} |
| All ${n} subscribed again, after the SIGTERM | ${back} |
| Peak accept rate (re-subscribes in one second) | **${num(r.storm.peakRate)}/s** |
| Upgrade attempts | ${num(storm.attempts)} |
| Failed attempts, by cause | ${num(failed)} (${tally(storm.failures)}) |
| Failed attempts the client did not retry | **${num(r.storm.unretried)}** |
| Closes the clients saw | ${tally(storm.closes)} |

${
  r.storm.unretried === 0 && allBack
    ? 'Every failed attempt (refused while the node was down, a reset or a 503 while it started) was retried, ' +
      'and every client was subscribed again at the end.'
    : `${num(r.storm.unretried)} failed attempts were not retried; ${num(r.storm.subscribedAtEnd)} clients were back.`
} Client side: ${num(r.loadRssBytes / 2 ** 20)} MiB RSS over the
${p.processes} load processes.

${allBack ? STORM_SETTLED : STORM_CAUSES}

**Memory per connection.** The RSS growth above does not measure it: the workers' heaps keep the pages that
their start-up (tsx compiling the sources) used, and the sockets' objects fill those pages before RSS grows;
read right after an open it also holds the handshakes' garbage, and V8 gives pages back to the kernel at
moments of its own, so the reading moves with the collector more than with the sockets (one process at 18,000
sockets, \`fanout-probe.ts\`: 2,115 and 2,146 B per socket in two runs after 20 ticks, 9,975 B in an earlier
one 5 s after the open). Measured apart instead, in one gateway process
(\`npx tsx bench/connections/memory-probe.ts 18000\`: the same node, \`workers: 0\`, and the same raw clients as this
part): read at 0 sockets and 30 s after each of four batches of 4,500 idle subscribed sockets (every socket
pinged by then), each reading taken inside the gateway by a preloaded diagnosis hook
(\`bench/connections/memory-hook.ts\`, on SIGUSR2: two full collections, then VmRSS beside
\`v8.getHeapStatistics()\`), and taken again every 10 s until three agree within 1 MiB (at most 8); per socket
is the least-squares slope against the socket count. Three fresh gateways, 2026-11-29 05:54–06:13 UTC, load
average 0.1–1.1:

| Per idle subscribed socket (slope over 0–18,000 sockets) | gateway 1 · 2 · 3 | median |
|---|---|---|
| JS heap: V8's heap used after the collections | 2,662 · 2,665 · 2,656 | **2,662 B** |
| Native: RSS less V8's resident heap (Node's TCP wrap, libuv's handle, malloc) | 555 · 574 · 589 | **574 B** |
| What a socket holds: JS heap + native | 3,216 · 3,239 · 3,245 | **3,239 B (3.16 KiB)** |
| V8's resident heap: the live objects and the free space left in their pages | 3,187 · 3,146 · 3,151 | 3,151 B |
| V8's young generation (new space), resident | 431 · 384 · 390 | 390 B |
| RSS | 3,742 · 3,721 · 3,740 | **3,740 B (3.65 KiB)** |
| RSS less the young generation | 3,311 · 3,337 · 3,350 | 3,337 B |

**Both are under the ≤ 4 KiB target: RSS grows by 3,740 B per idle subscribed socket (3,721–3,742 B in the
three), and what a socket holds, its JS heap and its native part, is 3,239 B.** The native part is measured
now (it was an estimate of about 1 KiB), and the JS part agrees with the heap snapshots below (3,071 B less
the 408 B that Node reports there for its native TCP wrap, which the native row counts: 2,663 B). The rest of
RSS is V8's: free space left in old-space pages, and its young generation, which V8 sizes by the allocation it
sees, up to a cap per process: a cost per process, not per socket (with \`WS_WORKERS=8\` a node pays it up to
eight times; a slope at one process counts it once).

Two pitfalls met on the way, for whoever reads a gateway's memory next. \`gc({ type: 'major' })\` (any options
object) runs only a scavenge of the young generation on Node 20's V8 (\`--trace-gc\` shows it): readings taken
that way climbed ~0.9 MiB per 10 s at 9,000 idle sockets and fell back at V8's own full collections, a
saw-tooth of ~6 MiB that heap snapshots of another such gateway (six, 16 s apart) did not show; the hook
calls \`gc()\` with
no argument. And V8 kept ~35–40 MiB of heap pages from the start-up resident, outside every heap statistic
(256 KiB mappings in \`/proc/<pid>/smaps\` beyond the heap's resident size), and gave them back some tens of
seconds later, which read as native memory leaving: the readings wait for a still process. A bare Node \`net\`
server on this machine (\`npx tsx bench/connections/net-socket-probe.ts 18000\`: idle accepted sockets, no
\`ws\`, read the same way, three fresh servers) holds 760 B of JS heap and 595 B native per socket (546–626 B
in the three): the gateway's native part, 574 B, is Node's own TCP socket, so there is no native saving to
find in the gateway's code, and the gateway's JS heap is about 1,900 B more than bare Node's (\`ws\`'s
WebSocket, Receiver and Sender, the gateway's connection, session and subscription). Outside every process's
RSS, the kernel holds per socket end about 3.6 KiB of slab on this machine (the TCP socket 2,368 B, its inode
832 B, file 192 B, dentry 192 B, epoll item 128 B) and no buffer pages while the socket is idle
(\`/proc/slabinfo\`, \`/proc/net/sockstat\`).

**What was changed to get here** (JS heap per idle subscribed socket: a heap snapshot diff of one gateway
process at 0 and N sockets, \`npx tsx bench/connections/heap-probe.ts N\`, every object's self size summed
except compiled code, a fixed cost the diff would spread over the sockets): 4,155 B before this round
(N = 5,000), 3,559 B after all but the last item (N = 5,000), 3,489 B after all but the last (N = 2,000: the
machine was held by a 100,000-socket run), load average ~20; then, on a quiet machine (load average ~1,
N = 3,000, back to back), 3,473 B before the last item and 3,071 B after it. Earlier rounds
had taken it from 4,601 B to 3,883 B, counted then without the native wrap: the listeners shared by every
socket, the lazily made request queue, a session's streams in an exact-size array.
- Each socket's \`ws\` \`_events\` object held our four listeners and grew to 280 B (a dictionary-mode object
  and its table) for four functions every socket shares. The server's \`WebSocket\` class is now
  \`GatewaySocket\`, whose \`emit\` hands each event straight to its connection; its \`_events\` is dropped
  (Node makes one again on a first \`on()\`). \`autoPong\` is off, so \`ws\` no longer keeps a closure and
  context per socket for its pong callback (96 B); the connection answers pings itself, and a peer that
  pings without reading is closed with 4008 at the hard buffer limit like any slow consumer.
- The message rate limiter was an object per socket (80 B, three of its fields the same for all): one limiter
  now serves every socket, whose window is four fields on its connection.
- \`ws\`'s read-chunk array keeps a 17-slot backing store (152 B) once a chunk passed through it; it is
  replaced by an empty one when nothing is buffered after a message, ping or pong.
- Node's cached peer address (56 B and its strings) is dropped once the socket is upgraded.
- Left as they are: \`ws\`'s Receiver (a Writable: 272 B, its state 104 B, its own listeners 128 B) and
  Sender; Node's \`net.Socket\` with its stream states, listener arrays and bound callbacks.
- The upgrade's per-address slot was an object with a \`release\` closure and its contexts, held by a
  \`once('close')\` wrapper (a fresh closure, bound function and state per socket): about 400 B. The slot is
  now a small object with its method on the prototype (40 B), kept on the socket under a symbol and given
  back by one \`close\` listener shared by every socket.

**Fan-out of a tick, where the CPU goes** (\`BENCH_GATEWAY_NODE_FLAGS='--cpu-prof' npx tsx
bench/connections/fanout-probe.ts 12500 40\`: one gateway process, 12,500 subscribed sockets, 40 ticks 250 ms
apart; the node's CPU from \`/proc\` less the same window idle): 13.3 µs of node CPU per delivery on a machine at load
average ~20; at 18,000 sockets, 20 ticks, load average ~2, 13.9 µs before this round and 14.1 µs after (the
write path was not changed: the two are the same within noise). Of the tick's work, 88 % is \`writeBuffer\`,
the one \`write\` system call per socket (on loopback it carries the receiving side's TCP work too); building
the frame, walking the subscribers, the
slow-consumer checks, cork and uncork are the other 12 %. The frame is already built once per tick and the
same Buffer written to every socket, with one system call per socket per tick (cork/uncork batches a
burst), so what is left per delivery is the kernel's: the fan-out's p99 at 100,000 is the two cores' write
and read syscalls, shared with the clients.

Rerun this part alone with \`npm run bench -- --only connections\` (${n} sockets, writes this block), or at a
smaller size without docs: \`npm run bench -- --only connections --connections 18000 --workers 0\`.
`;
}

/** The node's front door, as it is now; said under every storm. */
const FRONT_DOOR = [
  "The node's primary accepts every connection and hands it, unread, to a worker",
  '(`ConnectionDispatcher`, apps/ws/src/cluster/): at most 2,048 connections wait for a worker, the',
  'oldest closed to take the newest, and one that has waited 3 s when a worker is free for it is',
  'closed instead of handed over, so a worker spends no handshake on a client about to give up (counted in',
  "`tradewire_ws_connections_shed_total`). Until 2026-11-29 it was node:cluster's round-robin",
  '(`SCHED_RR`), whose queue in the primary has no bound: in the storms of that day the primary held',
  "19,835–20,000 descriptors, this machine's hard limit, for 28–47 s of each settled storm and",
  'throughout the ones that did not settle, libuv accepting and closing connections unanswered meanwhile',
  '(most of the "connection closed during upgrade" failures), and every connection it handed over had',
  "waited as long as the queue was: past the clients' 10 s upgrade timeout once the workers fell behind.",
  'A worker sends its reservations and releases to the primary in one message each per turn of its',
  'event loop, and one with 256 reservations waiting answers further upgrades 503 with `Retry-After` at',
  'once.',
].join(' ');

/** How the load processes stand in for the SDK in a storm; said under every storm. */
const STORM_CLIENTS = [
  "Each client gives an open up after 10 s (the SDK's `openTimeoutMs`: TCP connect and upgrade; the",
  'raw client waited 30 s until 2026-11-29 14:07 UTC) and a subscribe after 10 s (its',
  '`requestTimeoutMs`), then retries on the backoff. A load process starts at most 100 retries per turn',
  'of its event loop (since 2026-11-29 14:00 UTC): it stands in for ~14,000 browsers on a share of two',
  'cores, and when its loop fell behind, every retry timer due meanwhile fired in one turn; thousands of',
  'connects at once held its loop for 10–55 s (its event-loop delay, now in the storm log with its CPU),',
  "its subscribed sockets answered the heartbeat's pings too late and were closed (1006), and the storm",
  'undid its own progress: the storms of 2026-11-29 before 14:00 UTC did not settle (the paragraphs',
  'below this block). The storm log also shows, every 5 s, what the node closed by reason (its',
  '`/metrics`) and how many connections the kernel dropped at a full accept queue (`ListenOverflows`).',
].join(' ');

/** What the storm runs showed, for a run whose storm settled. */
const STORM_SETTLED = [
  FRONT_DOOR,
  STORM_CLIENTS,
  "The storm settles, slowly: the node's restart (tsx compiles the sources in each of its processes)",
  "and every handshake share the two cores with the clients' retries (the load processes used about",
  '20 % of a core each during it), and most attempts fail and are retried: resets of connections the',
  'primary shed from its full queue (the node counts them as `queue_full`), and opens given up after',
  "10 s while the kernel dropped connections at the primary's full accept queue (70,000–370,000 per",
  "7–9 s in the logs of 14:21 and 14:35 UTC). Until 15:44 UTC the node's heartbeat also closed a few",
  "thousand subscribed sockets near the end of each storm (the 1006 closes), while the node's own",
  'loops were held for under 0.3 s (`bench/connections/loop-delay-hook.ts`): each such socket had',
  'received its ping and written its pong, late. The load client queued its pongs and sent them a',
  'slice per turn of its loop, and in 2–5 s turns the last of a long queue waited past the 10 s',
  'deadline. Since 15:44 UTC every heartbeat ping carries its send time',
  '(`bench/connections/ping-stamp-hook.ts`, preloaded by the benchmark), a ping with a payload is',
  'answered at once, as a browser answers, and the storm-only run of 15:44 UTC (99,999 sockets, back',
  'in 268.0 s) had no 1006 close at all.',
  'A gateway box needs a descriptor limit well above its connections (docs/deploy.md).',
].join(' ');

/**
 * What the storm runs showed about a storm that does not settle (shown only then).
 */
const STORM_CAUSES = [
  FRONT_DOOR,
  STORM_CLIENTS,
  'Why a storm does not settle on this machine: the sockets that do subscribe are closed by the',
  'heartbeat (the 1006 closes: `tradewire_ws_disconnects_total{reason="heartbeat"}`) because their',
  'clients, on the two cores the node is busy on, answer pings more than 10 s late (the load processes',
  "left the benchmark's own status requests unanswered for 15 s to over 60 s then); each such close starts that",
  "client's backoff over, and the storm comes back. No worker exited, and no upgrade got the 503 of a",
  'reservation the primary answered too late. With `NODE_CLUSTER_SCHED_POLICY=none` (tried before the',
  'dispatcher: every worker accepts for itself) the primary stayed at ~35 descriptors and 60,000–78,000',
  'of 99,999 were subscribed again 2–5 minutes after the restart (8,000–26,000 under `SCHED_RR`), but',
  "the heartbeat's closes still kept it from settling, and the workers' shares of the connections were",
  "uneven (the two-worker e2e test's even spread failed).",
].join(' ');
