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
  /** Used bytes per heap space (new, old, code, large object, …). */
  spaces: Record<string, number>;
}

/** Where the memory hook in process `pid` appends its readings, one JSON line each. */
export function memoryReadingsFile(pid: number): string {
  return join(tmpdir(), `tradewire-memory-${pid}.jsonl`);
}

/**
 * Two full collections, the second after the concurrent sweeper and unmapper had `pauseMs` to
 * run (what the first freed is then given back, what it promoted is collected), then a reading.
 */
export async function collectAndRead(pauseMs = 500): Promise<MemoryReading> {
  const gc = fullGc();
  gc();
  await new Promise((resolve) => setTimeout(resolve, pauseMs));
  gc();
  return readMemory();
}

export function readMemory(): MemoryReading {
  const status = readFileSync('/proc/self/status', 'utf8');
  const bytes = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1]) * 1024;
  const heap = getHeapStatistics();
  const usage = process.memoryUsage();
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
    spaces: Object.fromEntries(getHeapSpaceStatistics().map((s) => [s.space_name, s.space_used_size])),
  };
}

/** V8's `gc()`: the global one under `--expose-gc`, else exposed now in a fresh context. */
function fullGc(): () => void {
  const exposed = (globalThis as { gc?: () => void }).gc;
  if (exposed) return exposed;
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
}
