// Diagnosis only: the gateway's CPU per price-tick delivery, one gateway process and N idle
// subscribed sockets (default 12,500: one worker's share of 100,000 on WS_WORKERS=8).
//   npx tsx bench/connections/fanout-probe.ts [sockets] [ticks]
// CPU comes from /proc/<pid>/stat over a window of ticks, less the same window idle; with
// BENCH_GATEWAY_NODE_FLAGS='--cpu-prof --cpu-prof-dir=/tmp/fanprof' the node also writes a profile.
import { connectRedisBroker, createEventPublisher } from '@repo/broker';
import { monoMs, sleep } from '../lib/clock.ts';
import { percentile } from '../lib/stats.ts';
import { priceForSeq } from '../load/shared-state.ts';
import { startProbeNode } from './probe-node.ts';

const n = Number(process.argv[2] ?? 12_500);
const ticks = Number(process.argv[3] ?? 40);
const spacingMs = 600;
const probe = await startProbeNode('fan', { maxSockets: n });
const { node } = probe;
const broker = await connectRedisBroker(probe.redisUrl);
const events = createEventPublisher(broker);
const rssBefore = node.rssBytes();
const fleet = await probe.openSockets(n, 0);
await sleep(5000);
const rssAfter = node.rssBytes();
console.log(
  `node RSS ${(rssBefore / 2 ** 20).toFixed(0)} → ${(rssAfter / 2 ** 20).toFixed(0)} MiB: ` +
    `${((rssAfter - rssBefore) / n).toFixed(0)} B per socket`,
);

const cpuOver = async (work: () => Promise<void>) => {
  const before = node.cpuMicros();
  const started = monoMs();
  await work();
  return { cpuUs: node.cpuMicros() - before, ms: monoMs() - started };
};
const idle = await cpuOver(() => sleep(ticks * spacingMs));
let seq = 3_000_000;
const busy = await cpuOver(async () => {
  for (let i = 0; i < ticks; i++) {
    await events.publishPriceUpdate('SOL', priceForSeq((seq += 1)));
    await sleep(spacingMs);
  }
});
const idleRate = idle.cpuUs / idle.ms;
const perDelivery = (busy.cpuUs - idleRate * busy.ms) / (ticks * n);
console.log(
  `${n} sockets, ${ticks} ticks: node CPU ${(busy.cpuUs / 1000).toFixed(0)} ms busy over ${busy.ms.toFixed(0)} ms, ` +
    `${(idle.cpuUs / 1000).toFixed(0)} ms idle over ${idle.ms.toFixed(0)} ms: ` +
    `${perDelivery.toFixed(2)} µs per delivery`,
);

// After the ticks' allocations the heap has been collected at least once: RSS is nearer the
// sockets' own cost than right after the open, when the handshakes' garbage is still there.
await sleep(10_000);
const rssSteady = node.rssBytes();
console.log(
  `node RSS after the ticks ${(rssSteady / 2 ** 20).toFixed(0)} MiB: ` +
    `${((rssSteady - rssBefore) / n).toFixed(0)} B per socket over the start`,
);

// Every subscriber gets each tick, intact (the load process checks the seq in each frame).
for (let i = 0; i < 3; i++) {
  seq += 1;
  fleet.send({ type: 'expect', seq });
  await fleet.status();
  const publishedAt = monoMs();
  await events.publishPriceUpdate('SOL', priceForSeq(seq));
  await sleep(3000);
  fleet.send({ type: 'collect' });
  const receipts = await fleet.gather('receipts', 60_000);
  const times = receipts.flatMap((r) => r.times.map((t) => t - publishedAt)).sort((a, b) => a - b);
  const missing = receipts.reduce((sum, r) => sum + r.missing, 0);
  console.log(
    `tick: ${times.length} received, ${missing} missing, p50 ${percentile(times, 50).toFixed(0)} ms, ` +
      `p99 ${percentile(times, 99).toFixed(0)} ms, last ${times.at(-1)?.toFixed(0)} ms`,
  );
}
await broker.close();
await probe.stop();
process.exit(0);
