import { readFileSync } from 'node:fs';

/** Kernel clock ticks per second (`getconf CLK_TCK`); 100 on every Linux we run on. */
const CLK_TCK = 100;

/**
 * CPU time (user + system) of a whole process, every thread included, in microseconds, read
 * from `/proc/<pid>/stat`. Resolution is one tick (10 ms), so measure over seconds.
 */
export function processCpuMicros(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // The command name (field 2) may contain spaces and parentheses: split after the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // Fields 14 (utime) and 15 (stime), counted from 1; the slice starts at field 3.
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  return ((utime + stime) * 1e6) / CLK_TCK;
}

/** Resident set size of a process in bytes, from `/proc/<pid>/status` (VmRSS). */
export function processRssBytes(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const match = /^VmRSS:\s+(\d+) kB/m.exec(status);
  if (!match) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(match[1]) * 1024;
}

/**
 * Time the main thread of `pid` spent runnable but waiting for a CPU (the run queue), in ms,
 * from `/proc/<pid>/schedstat`. It grows when other processes share the CPU: the measure of
 * how much a noisy machine, not the code, delayed a figure.
 */
export function runQueueWaitMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/schedstat`, 'utf8').trim().split(' ');
  return Number(fields[1]) / 1e6;
}
