/**
 * Diagnosis only: memory per idle subscribed socket in one gateway process, the JS heap apart
 * from the native part (what a heap snapshot does not see: malloc, libuv's handles, Node's
 * stream bindings).
 *   npx tsx bench/connections/memory-probe.ts [sockets=18000] [steps=4] [repetitions=3]
 *
 * Each repetition starts a fresh gateway process (`workers: 0`, the memory hook preloaded) and
 * reads it at 0 sockets, then after each of `steps` equal batches of sockets (one more load
 * process each, the connections benchmark's raw clients): every reading follows two full
 * collections in the gateway. Per socket is the least-squares slope of each figure against the
 * socket count; the residuals say how straight the line is. RSS after a collection still moves
 * with what malloc keeps of freed memory, so the repetitions say how far to trust one slope.
 * The sockets stay under the gateway's file limit (20,000 on this machine, hard).
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { sleep } from '../lib/clock.ts';
import { linearFit, median } from '../lib/stats.ts';
import { memoryReadingsFile, type MemoryReading } from './memory-reading.ts';
import { startProbeNode } from './probe-node.ts';

const HOOK = fileURLToPath(new URL('./memory-hook.ts', import.meta.url));
const RESULTS = fileURLToPath(new URL('../results/memory-probe-latest.json', import.meta.url));

const n = Number(process.argv[2] ?? 18_000);
const steps = Number(process.argv[3] ?? 4);
const repetitions = Number(process.argv[4] ?? 3);
const batch = Math.floor(n / steps);

/** The figures fitted against the socket count, each from one reading. */
const FIGURES: Record<string, (r: MemoryReading) => number> = {
  rss: (r) => r.rss,
  'heap used': (r) => r.heapUsed,
  'heap resident': (r) => r.heapPhysical,
  'heap committed': (r) => r.heapCommitted,
  'native (rss − heap resident)': (r) => r.rss - r.heapPhysical,
  'native (rss − heap committed)': (r) => r.rss - r.heapCommitted,
  'external (Buffers)': (r) => r.external,
};

interface Point {
  sockets: number;
  loadAverage: number;
  reading: MemoryReading;
}

interface Repetition {
  points: Point[];
  /** Per figure: the slope over every point, and over the points from the first batch on. */
  fits: Record<string, { all: Fit; afterFirst: Fit }>;
}

interface Fit {
  bytesPerSocket: number;
  slopeError: number;
  /** The largest residual, in bytes. */
  maxResidual: number;
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

function fit(points: Point[], figure: (r: MemoryReading) => number): Fit {
  const line = linearFit(
    points.map((p) => p.sockets),
    points.map((p) => figure(p.reading)),
  );
  return {
    bytesPerSocket: line.slope,
    slopeError: line.slopeError,
    maxResidual: Math.max(...line.residuals.map(Math.abs)),
  };
}

async function repetition(index: number): Promise<Repetition> {
  const probe = await startProbeNode('mem', { maxSockets: n, nodeFlags: ['--import', HOOK] });
  const points: Point[] = [];
  try {
    const read = async (sockets: number) => {
      const point = { sockets, reading: await readGateway(probe.pid), loadAverage: loadavg()[0]! };
      points.push(point);
      const r = point.reading;
      console.log(
        `  #${index} ${String(sockets).padStart(6)} sockets: rss ${mib(r.rss)}, heap used ${mib(r.heapUsed)}, ` +
          `resident ${mib(r.heapPhysical)}, committed ${mib(r.heapCommitted)}, ` +
          `native ${mib(r.rss - r.heapPhysical)} MiB; load average ${point.loadAverage.toFixed(2)}`,
      );
    };
    await read(0);
    for (let step = 0; step < steps; step++) {
      await probe.openSockets(batch, step);
      // The last handshakes' work done and their garbage young: the hook's collections take it.
      await sleep(3000);
      await read(batch * (step + 1));
    }
  } finally {
    await probe.stop();
    rmSync(memoryReadingsFile(probe.pid), { force: true });
  }
  const fits = Object.fromEntries(
    Object.entries(FIGURES).map(([name, figure]) => [
      name,
      { all: fit(points, figure), afterFirst: fit(points.slice(1), figure) },
    ]),
  );
  for (const [name, f] of Object.entries(fits))
    console.log(`  #${index} ${name}: ${describe(f.all)}; ${describe(f.afterFirst)} from the first batch on`);
  return { points, fits };
}

const mib = (bytes: number) => (bytes / 2 ** 20).toFixed(1);
const describe = (f: Fit) =>
  `${f.bytesPerSocket.toFixed(0)} ± ${f.slopeError.toFixed(0)} B/socket ` +
  `(max residual ${(f.maxResidual / 1024).toFixed(0)} KiB)`;

console.log(`memory probe: ${repetitions} × (0 and ${steps} batches of ${batch} sockets), one gateway process`);
const reps: Repetition[] = [];
for (let i = 1; i <= repetitions; i++) reps.push(await repetition(i));

console.log('\nper socket, each repetition and the median (slope over every point | from the first batch on):');
for (const name of Object.keys(FIGURES)) {
  const all = reps.map((r) => r.fits[name]!.all.bytesPerSocket);
  const after = reps.map((r) => r.fits[name]!.afterFirst.bytesPerSocket);
  console.log(
    `  ${name.padEnd(30)} ${all.map((v) => v.toFixed(0)).join(' · ')} → median ${median(all).toFixed(0)} B | ` +
      `${after.map((v) => v.toFixed(0)).join(' · ')} → median ${median(after).toFixed(0)} B`,
  );
}
mkdirSync(fileURLToPath(new URL('../results/', import.meta.url)), { recursive: true });
writeFileSync(RESULTS, JSON.stringify({ sockets: n, steps, startedAt: new Date().toISOString(), reps }, null, 2));
console.log(`\nreadings and fits: ${RESULTS}`);
process.exit(0);
