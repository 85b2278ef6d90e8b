// Diagnosis only: heap snapshots of one gateway process at 0 and at N connections.
//   npx tsx bench/connections/heap-probe.ts [sockets]
import { mkdirSync, readdirSync, statSync } from 'node:fs';
import { sleep } from '../lib/clock.ts';
import { startProbeNode } from './probe-node.ts';

const n = Number(process.argv[2] ?? 5000);
mkdirSync('/tmp/heapprobe', { recursive: true });
const probe = await startProbeNode('conn', {
  maxSockets: n,
  nodeFlags: ['--heapsnapshot-signal=SIGUSR2', '--diagnostic-dir=/tmp/heapprobe'],
  settleMs: 2000,
});
const snap = async () => {
  const before = readdirSync('/tmp/heapprobe').length;
  process.kill(probe.pid, 'SIGUSR2');
  while (readdirSync('/tmp/heapprobe').length === before) await sleep(200);
  // The file appears at once and is written for seconds: wait until its size stops changing.
  const file = `/tmp/heapprobe/${readdirSync('/tmp/heapprobe').sort().at(-1)!}`;
  let size = -1;
  for (;;) {
    await sleep(2000);
    const now = statSync(file).size;
    if (now > 0 && now === size) break;
    size = now;
  }
};
await snap();
const rss0 = probe.node.rssBytes();
await probe.openSockets(n, 0);
await sleep(3000);
const rss1 = probe.node.rssBytes();
console.log('rss per conn', (rss1 - rss0) / n);
await snap();
const t0 = Date.now();
await probe.node.stop();
console.log('stop took', Date.now() - t0, 'ms');
console.log(probe.node.stderr().slice(-3000));
await probe.stop();
process.exit(0);
