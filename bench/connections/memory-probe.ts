/**
 * Diagnosis only: memory per idle subscribed socket in one gateway process, the JS heap apart
 * from the native part (what a heap snapshot does not see: malloc, libuv's handles, Node's
 * stream bindings).
 *   npx tsx bench/connections/memory-probe.ts [sockets=18000] [steps=4] [repetitions=3]
 *
 * Each repetition starts a fresh gateway process (`workers: 0`, the memory hook preloaded) and
 * reads it at 0 sockets, then 30 s after each of `steps` equal batches of sockets (one more
 * load process each, the connections benchmark's raw clients): every reading follows two
 * full collections in the gateway, and is taken again until the gateway is still
 * (`settledReading`). Per socket is the least-squares slope of each figure against the socket
 * count; the residuals say how straight the line is, the repetitions how far to trust one
 * slope. "Native" is RSS less V8's resident heap: malloc (Node's TCP wrap and stream
 * bindings, libuv's handle), which no heap snapshot sees. The sockets stay under the gateway's
 * file limit (20,000 on this machine, hard).
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { sleep } from '../lib/clock.ts';
import { fitLines, fitPoints, pointLine, summaryLines, type Fits, type Point } from './memory-fit.ts';
import { memoryReadingsFile, settledReading, type MemoryReading } from './memory-reading.ts';
import { startProbeNode } from './probe-node.ts';

const HOOK = fileURLToPath(new URL('./memory-hook.ts', import.meta.url));
const RESULTS = fileURLToPath(new URL('../results/memory-probe-latest.json', import.meta.url));

/** The gateway's ping interval (25 s) and a margin for its pongs. */
const HEARTBEAT_SETTLE_MS = 30_000;

const n = Number(process.argv[2] ?? 18_000);
const steps = Number(process.argv[3] ?? 4);
const repetitions = Number(process.argv[4] ?? 3);
const batch = Math.floor(n / steps);

interface Repetition {
  points: Point[];
  fits: Fits;
}

/** Signals the hook and waits for its line. */
async function readGateway(pid: number): Promise<MemoryReading> {
  const file = memoryReadingsFile(pid);
  const lines = () => {
    try {
      return readFileSync(file, 'utf8').split('\n').filter(Boolean);
    } catch {
      return [];
    }
  };
  const before = lines().length;
  process.kill(pid, 'SIGUSR2');
  const deadline = Date.now() + 60_000;
  while (lines().length === before) {
    if (Date.now() > deadline) throw new Error(`no memory reading from the gateway (pid ${pid}) in 60 s`);
    await sleep(100);
  }
  return JSON.parse(lines().at(-1)!) as MemoryReading;
}

async function repetition(index: number): Promise<Repetition> {
  const probe = await startProbeNode('mem', { maxSockets: n, nodeFlags: ['--import', HOOK] });
  const points: Point[] = [];
  try {
    const read = async (sockets: number) => {
      const { reading, settled, history } = await settledReading(() => readGateway(probe.pid));
      const point = { sockets, reading, history, settled, loadAverage: loadavg()[0]! };
      points.push(point);
      console.log(pointLine(`#${index}`, point));
    };
    await read(0);
    for (let step = 0; step < steps; step++) {
      await probe.openSockets(batch, step);
      // Every new socket pinged and its pong read before the readings: the heartbeat is an
      // idle socket's only traffic, and what it leaves behind is part of the socket's cost.
      await sleep(HEARTBEAT_SETTLE_MS);
      await read(batch * (step + 1));
    }
  } finally {
    await probe.stop();
    rmSync(memoryReadingsFile(probe.pid), { force: true });
  }
  const fits = fitPoints(points);
  for (const line of fitLines(`#${index}`, fits)) console.log(line);
  return { points, fits };
}

console.log(`memory probe: ${repetitions} × (0 and ${steps} batches of ${batch} sockets), one gateway process`);
const reps: Repetition[] = [];
for (let i = 1; i <= repetitions; i++) reps.push(await repetition(i));

console.log('\nper socket, each repetition and the median (slope over every point | from the first batch on):');
for (const line of summaryLines(reps.map((r) => r.fits))) console.log(line);
mkdirSync(fileURLToPath(new URL('../results/', import.meta.url)), { recursive: true });
writeFileSync(RESULTS, JSON.stringify({ sockets: n, steps, startedAt: new Date().toISOString(), reps }, null, 2));
console.log(`\nreadings and fits: ${RESULTS}`);
process.exit(0);
