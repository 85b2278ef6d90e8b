/**
 * The memory probes' arithmetic: readings at several socket counts, each figure's least-squares
 * slope against the count (bytes per socket), and the repetitions side by side with their median.
 */
import { linearFit, median } from '../lib/stats.ts';
import type { MemoryReading } from './memory-reading.ts';

/** The figures fitted against the socket count, each from one reading. */
export const FIGURES: Record<string, (r: MemoryReading) => number> = {
  rss: (r) => r.rss,
  'heap used': (r) => r.heapUsed,
  'heap resident': (r) => r.heapPhysical,
  'heap committed': (r) => r.heapCommitted,
  'native (rss − heap resident)': (r) => r.rss - r.heapPhysical,
  'native (rss − heap committed)': (r) => r.rss - r.heapCommitted,
  'external (Buffers)': (r) => r.external,
  // What a socket holds: its live objects and its native part, without the heap's free space.
  'heap used + native': (r) => r.heapUsed + r.rss - r.heapPhysical,
  // V8 sizes its young generation by the allocation it sees, up to a cap: a cost per process.
  'young generation resident': (r) => r.spacesResident.new_space ?? 0,
  'rss − young generation': (r) => r.rss - (r.spacesResident.new_space ?? 0),
};

export interface Point {
  sockets: number;
  loadAverage: number;
  /** The settled reading, and every reading's RSS and heap used on the way (`settledReading`). */
  reading: MemoryReading;
  history: [number, number][];
  settled: boolean;
}

export interface Fit {
  bytesPerSocket: number;
  slopeError: number;
  /** The largest residual, in bytes. */
  maxResidual: number;
}

/** Per figure: the slope over every point, and over the points from the first batch on. */
export type Fits = Record<string, { all: Fit; afterFirst: Fit }>;

export function fitPoints(points: Point[]): Fits {
  return Object.fromEntries(
    Object.entries(FIGURES).map(([name, figure]) => [
      name,
      { all: fit(points, figure), afterFirst: fit(points.slice(1), figure) },
    ]),
  );
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

const mib = (bytes: number) => (bytes / 2 ** 20).toFixed(1);
const describe = (f: Fit) =>
  `${f.bytesPerSocket.toFixed(0)} ± ${f.slopeError.toFixed(0)} B/socket ` +
  `(max residual ${(f.maxResidual / 1024).toFixed(0)} KiB)`;

export function pointLine(label: string, point: Point): string {
  const r = point.reading;
  return (
    `  ${label} ${String(point.sockets).padStart(6)} sockets: rss ${mib(r.rss)}, heap used ${mib(r.heapUsed)}, ` +
    `resident ${mib(r.heapPhysical)}, committed ${mib(r.heapCommitted)}, ` +
    `native ${mib(r.rss - r.heapPhysical)} MiB; load average ${point.loadAverage.toFixed(2)}; ` +
    `${point.history.length} readings${point.settled ? '' : ', NOT SETTLED'}`
  );
}

export function fitLines(label: string, fits: Fits): string[] {
  return Object.entries(fits).map(
    ([name, f]) => `  ${label} ${name}: ${describe(f.all)}; from the first batch on ${describe(f.afterFirst)}`,
  );
}

/** Each figure's slope in every repetition and their median, over every point | from the first batch on. */
export function summaryLines(reps: Fits[]): string[] {
  return Object.keys(FIGURES).map((name) => {
    const all = reps.map((r) => r[name]!.all.bytesPerSocket);
    const after = reps.map((r) => r[name]!.afterFirst.bytesPerSocket);
    return (
      `  ${name.padEnd(30)} ${all.map((v) => v.toFixed(0)).join(' · ')} → median ${median(all).toFixed(0)} B | ` +
      `${after.map((v) => v.toFixed(0)).join(' · ')} → median ${median(after).toFixed(0)} B`
    );
  });
}
