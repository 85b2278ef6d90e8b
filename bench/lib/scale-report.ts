import { mdTable, paragraph } from './md.ts';
import { formatNumber as fmt } from './report.ts';
import type { BenchResults, RunRecord } from './results.ts';
import type { PartitionShareRun, WorkersRun } from './scale-results.ts';
import { median } from './stats.ts';

const failedRow = (error: string, columns: number) => [
  '—',
  `failed: ${error.split('\n')[0]!.slice(0, 200)}`,
  ...Array.from({ length: columns - 2 }, () => ''),
];

/** The scale part: one gateway process against `WS_WORKERS`, and the partitioned routing share. */
export function renderScale(results: BenchResults): string | null {
  const scale = results.scale;
  if (!scale) return null;
  const p = results.params.scale;
  const tp = results.params.throughput;
  const out: string[] = ['## Scale: workers and partitioned routing', ''];

  out.push(
    '### One gateway process against `WS_WORKERS`',
    '',
    paragraph(
      "The launcher's gateway role (`node apps/server/src/main.ts ws`, on PostgreSQL and the benchmark's",
      `Redis) on the fan-out throughput setup: ${fmt(tp.clients)} clients on \`prices\`, ${tp.window} events in`,
      `flight ahead of the slowest client, ${tp.measureMs / 1000} s measured; ${p.reps} repetitions, interleaved.`,
      '**This machine has 2 cores and the load generator and Redis share them with the gateway**: the',
      "node's processes may use both CPUs (`taskset -c 0,1`), the generator and Redis are on CPU 1. With two",
      'workers one of them shares CPU 1 with the generator, so deliveries/s cannot double here; the figure that',
      'carries to a larger box is the CPU per delivery per worker (user + system time of the worker processes',
      'over the window, from `/proc/<pid>/stat`, divided by the deliveries), and the primary’s own CPU',
      '(`node:cluster` hands each connection to a worker; the primary forwards no message).',
    ),
    '',
  );
  if (scale.workersSkipped) out.push(`Not measured in this run: ${scale.workersSkipped}.`, '');
  const ok = scale.workers.filter((r): r is Extract<typeof r, { ok: true }> => r.ok).map((r) => r.result);
  const counts = [...new Set(ok.map((r) => r.workers))].sort((a, b) => a - b);
  if (counts.length > 0) {
    const of = (n: number) => ok.filter((r) => r.workers === n);
    const medianOf = (n: number, key: (r: WorkersRun) => number) => median(of(n).map(key));
    const rate1 = medianOf(counts[0]!, (r) => r.throughput.deliveriesPerSec);
    out.push(
      mdTable(
        [
          'WS_WORKERS',
          'Deliveries/s (median)',
          `vs ${counts[0]} process`,
          'Worker CPU µs/delivery (median)',
          'Node CPU µs/delivery, primary included (median)',
        ],
        counts.map((n) => {
          const rate = medianOf(n, (r) => r.throughput.deliveriesPerSec);
          return [
            String(n),
            fmt(rate),
            `${fmt(rate / rate1, 2)}×`,
            fmt(
              medianOf(n, (r) => r.workerCpuUsPerDelivery),
              2,
            ),
            fmt(
              medianOf(n, (r) => r.nodeCpuUsPerDelivery),
              2,
            ),
          ];
        }),
      ),
      '',
      'Every run:',
      '',
      mdTable(
        [
          'Rep',
          'WS_WORKERS',
          'Deliveries/s',
          'Worker CPU µs/delivery',
          'CPU % per process',
          'Lost',
          'Duplicated',
          'Disconnected',
          'Generator CPU %',
        ],
        scale.workers.map((r) =>
          r.ok
            ? [
                String(r.rep),
                String(r.result.workers),
                fmt(r.result.throughput.deliveriesPerSec),
                fmt(r.result.workerCpuUsPerDelivery, 2),
                r.result.processes.map((x) => `${x.role} ${x.cpuPct}%`).join(', '),
                fmt(r.result.throughput.lost),
                fmt(r.result.throughput.duplicated),
                fmt(r.result.throughput.disconnected),
                `${fmt(r.result.throughput.generator.cpuPct)}%`,
              ]
            : [String(r.rep), ...failedRow(r.error, 8)],
        ),
      ),
      '',
    );
  }

  out.push(
    '### What each gateway receives and delivers (partitioned channels)',
    '',
    paragraph(
      `${p.gateways} tradewire gateways (\`bench/servers/tradewire.ts --partitions ${p.partitions}\`: the`,
      `partitioned channel layout of the Redis Cluster mode, \`<channel>:{userId mod ${p.partitions}}\`, here on`,
      `the benchmark's one Redis, which carries the same channel names), ${fmt(p.partitionUsers)} users with one`,
      `socket each on \`orders\`, \`order_filled\` to random users at ${fmt(p.partitionRate)}/s for`,
      `${p.partitionMeasureS} s. A gateway subscribes to a partition's channels while it holds a user of it.`,
      '*Received* is the gateway’s `tradewire_ws_broker_messages_total{kind="order_filled"}`; *delivered* is',
      `counted by the clients. Users are placed by partition (gateway = ⌊(userId mod ${p.partitions}) ×`,
      `${p.gateways} / ${p.partitions}⌋, a balancer that routes on the user) or at random (seeded; what a`,
      'round-robin balancer does).',
    ),
    '',
  );
  if (scale.partitions.length === 0) out.push('Not measured in this run (needs the seeded users).', '');
  else {
    out.push(
      mdTable(
        [
          'Placement',
          'Users per gateway',
          'Received / published, per gateway',
          'Delivered / received, per gateway',
          'Mean received share',
          'Mean delivered share of received',
          'Gateway CPU ms, per gateway',
          'Lost',
          'Wrong-user',
        ],
        scale.partitions.map((r) => (r.ok ? shareRow(r.result) : failedRow(r.error, 9))),
      ),
      '',
      paragraph(
        'The received share is the Redis messages per private event per gateway node. With users at random and',
        `u users per partition, the expected share is 1 − (1 − 1/${p.gateways})^u; with ${fmt(p.partitionUsers)}`,
        `users in ${p.partitions} partitions (u ≈ ${fmt(p.partitionUsers / p.partitions)}) every gateway receives`,
        `practically every private event and delivers about 1/${p.gateways} of them.`,
      ),
      '',
      ...discardCost(scale.partitions),
    );
  }
  return out.join('\n');
}

function shareRow(s: PartitionShareRun): string[] {
  const received = s.gateways.map((g) => g.received / s.published);
  const delivered = s.gateways.map((g) => (g.received === 0 ? Number.NaN : g.delivered / g.received));
  const mean = (xs: number[]) => {
    const known = xs.filter((x) => !Number.isNaN(x));
    return known.reduce((a, b) => a + b, 0) / known.length;
  };
  return [
    s.placement === 'partition' ? 'by partition' : 'at random',
    s.gateways.map((g) => fmt(g.users)).join(', '),
    received.map((x) => fmt(x, 2)).join(', '),
    delivered.map((x) => fmt(x, 2)).join(', '),
    `**${fmt(mean(received), 2)}**`,
    `**${fmt(mean(delivered), 2)}**`,
    s.gateways.map((g) => fmt(g.cpuMs)).join(', '),
    fmt(s.lost),
    fmt(s.wrongUser),
  ];
}

/**
 * What a message a gateway receives but delivers to nobody costs: the CPU the random placement
 * spent beyond the partition placement, over the extra messages it received (same users, same
 * events, same deliveries).
 */
function discardCost(runs: RunRecord<PartitionShareRun>[]): string[] {
  const find = (placement: string) =>
    runs.find((r): r is Extract<typeof r, { ok: true }> => r.ok && r.result.placement === placement)?.result;
  const byPartition = find('partition');
  const atRandom = find('random');
  if (!byPartition || !atRandom) return [];
  const sum = (r: PartitionShareRun, key: (g: PartitionShareRun['gateways'][number]) => number) =>
    r.gateways.reduce((total, g) => total + key(g), 0);
  const extraCpuUs = (sum(atRandom, (g) => g.cpuMs) - sum(byPartition, (g) => g.cpuMs)) * 1000;
  const extraMessages = sum(atRandom, (g) => g.received) - sum(byPartition, (g) => g.received);
  if (extraMessages <= 0) return [];
  return [
    paragraph(
      `CPU of a message received and delivered to nobody: the random placement's gateways used`,
      `${fmt(extraCpuUs / 1000)} ms more CPU than the partition placement's for ${fmt(extraMessages)} more`,
      `messages received: **${fmt(extraCpuUs / extraMessages, 1)} µs per discarded message** (one run each;`,
      'the gateways share CPU 0, and the figure carries the noise of this shared machine).',
    ),
    '',
  ];
}
