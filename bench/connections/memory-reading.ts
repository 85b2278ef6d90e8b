/**
 * One process's memory, read from inside it after a full collection: its RSS from the kernel
 * beside V8's own account of its heap, at the same moment. What is resident and not V8's heap is
 * native: malloc (Node's handle wraps and stream bindings, libuv's handles, V8's own malloc),
 * thread stacks, and the code of the binary and its libraries (a constant).
 */
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { getHeapSpaceStatistics, getHeapStatistics, setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { sleep } from '../lib/clock.ts';

export interface MemoryReading {
  /** `VmRSS`, `RssAnon` and `RssFile` of `/proc/self/status`, in bytes. */
  rss: number;
  rssAnon: number;
  rssFile: number;
  /** V8's heap: live objects after the collection, pages committed, pages resident. */
  heapUsed: number;
  heapCommitted: number;
  heapPhysical: number;
  /** Memory V8 itself holds through malloc, and external memory reported to it (Buffers). */
  v8Malloced: number;
  external: number;
  arrayBuffers: number;
  /** Used bytes per heap space (new, old, code, large object, …), and resident bytes. */
  spaces: Record<string, number>;
  spacesResident: Record<string, number>;
}

/** Where the memory hook in process `pid` appends its readings, one JSON line each. */
export function memoryReadingsFile(pid: number): string {
  return join(tmpdir(), `tradewire-memory-${pid}.jsonl`);
}

/**
 * Two full collections, the second after the concurrent sweeper and unmapper had `pauseMs` to
 * run, then a reading. `gc()` with no argument: Node 20's V8 answers any options object, even
 * `{ type: 'major' }`, with a scavenge of the young generation only (`--trace-gc` shows it), and
 * then the old generation's garbage is read as live heap until V8's own next full collection.
 */
export async function collectAndRead(pauseMs = 500): Promise<MemoryReading> {
  const gc = fullGc();
  gc();
  await sleep(pauseMs);
  gc();
  return readMemory();
}

type Gc = () => void;

export function readMemory(): MemoryReading {
  const status = readFileSync('/proc/self/status', 'utf8');
  const bytes = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1]) * 1024;
  const heap = getHeapStatistics();
  const usage = process.memoryUsage();
  const spaces = getHeapSpaceStatistics();
  return {
    rss: bytes('VmRSS'),
    rssAnon: bytes('RssAnon'),
    rssFile: bytes('RssFile'),
    heapUsed: heap.used_heap_size,
    heapCommitted: heap.total_heap_size,
    heapPhysical: heap.total_physical_size,
    v8Malloced: heap.malloced_memory,
    external: usage.external,
    arrayBuffers: usage.arrayBuffers,
    spaces: Object.fromEntries(spaces.map((s) => [s.space_name, s.space_used_size])),
    spacesResident: Object.fromEntries(spaces.map((s) => [s.space_name, s.physical_space_size])),
  };
}

/** V8's `gc()`: the global one under `--expose-gc`, else exposed now in a fresh context. */
function fullGc(): Gc {
  const exposed = (globalThis as { gc?: Gc }).gc;
  if (exposed) return exposed;
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as Gc;
}

/** RSS and heap-used moves between two readings below which a process counts as settled. */
const SETTLED_RSS = 1 << 20;
const SETTLED_HEAP = 1 << 20;

/**
 * Readings `intervalMs` apart until three in a row agree (RSS within 1 MiB, heap used within
 * 1 MiB, each from the one before), at most `tries`: the last one, and how many it took. A
 * gateway is not still for tens of seconds after its start: ~40 MiB of the start-up's heap
 * pages went back to the kernel between two readings, with no collection of ours between
 * them (V8's memory reducer runs 8 s after a collection: hence readings 10 s apart); nor right
 * after a batch of sockets (their upgrades' timers and garbage). A reading taken then puts that motion into the
 * slope.
 */
export async function settledReading(
  read: () => Promise<MemoryReading>,
  intervalMs = 10_000,
  tries = 8,
): Promise<{ reading: MemoryReading; readings: number; settled: boolean; history: [number, number][] }> {
  let last = await read();
  // Each reading's RSS and heap used, for the record: how the process moved while it settled.
  const history: [number, number][] = [[last.rss, last.heapUsed]];
  let stillFor = 0;
  for (let i = 2; i <= tries; i++) {
    await sleep(intervalMs);
    const now = await read();
    history.push([now.rss, now.heapUsed]);
    const still = Math.abs(now.rss - last.rss) < SETTLED_RSS && Math.abs(now.heapUsed - last.heapUsed) < SETTLED_HEAP;
    stillFor = still ? stillFor + 1 : 0;
    last = now;
    if (stillFor === 2) return { reading: now, readings: i, settled: true, history };
  }
  return { reading: last, readings: tries, settled: false, history };
}
