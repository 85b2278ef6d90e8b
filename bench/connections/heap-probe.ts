// Diagnosis only: heap snapshots of one gateway process at 0 and at N connections.
import { mkdirSync, readdirSync, statSync } from 'node:fs';
import { sleep } from '../lib/clock.ts';
import { freePort } from '../lib/free-port.ts';
import { startRedis } from '../lib/redis-server.ts';
import { createScratchDatabase } from '../lib/scratch-database.ts';
import { GatewayNode } from './gateway-node.ts';
import { LoadFleet } from './load-fleet.ts';
import { loadConfigs, CONNECTIONS_DEFAULTS } from './run-connections.ts';

const n = Number(process.argv[2] ?? 5000);
mkdirSync('/tmp/heapprobe', { recursive: true });
const redis = await startRedis(1);
const db = await createScratchDatabase('bench_conn');
process.env.NODE_OPTIONS = '--heapsnapshot-signal=SIGUSR2 --diagnostic-dir=/tmp/heapprobe';
const node = new GatewayNode({
  port: await freePort(),
  redisUrl: redis.url,
  databaseUrl: db.url,
  workers: 0,
  maxConnections: n + 1000,
});
await node.start();
delete process.env.NODE_OPTIONS;
await sleep(2000);
const pid = node.processes()[0]!;
const snap = async () => {
  const before = readdirSync('/tmp/heapprobe').length;
  process.kill(pid, 'SIGUSR2');
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
const rss0 = node.rssBytes();
const fleet = await LoadFleet.start(
  loadConfigs({ ...CONNECTIONS_DEFAULTS, connections: n, processes: 1 }, node.options.port),
);
fleet.send({ type: 'open' });
await fleet.gather('opened', 300_000);
await sleep(3000);
const rss1 = node.rssBytes();
console.log('rss per conn', (rss1 - rss0) / n);
await snap();
const t0 = Date.now();
await node.stop();
console.log('stop took', Date.now() - t0, 'ms');
console.log(node.stderr().slice(-3000));
await fleet.stop();
await db.drop();
await redis.stop();
process.exit(0);
