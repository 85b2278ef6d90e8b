import { readFileSync } from 'node:fs';

/**
 * Diagnosis only: where a Node process's on-CPU time goes, by package, from `perf` samples.
 *
 * V8's own profiler (`--cpu-prof`) samples on a wall-clock timer and charges a thread that was
 * preempted to the frame it was preempted in: on the order stand, the API's `writev` to
 * PostgreSQL looked like 20 % of its CPU, but most of it was the API waiting while the backend
 * it had just woken ran on its core. `perf` counts only time on a CPU, kernel included.
 *
 * Each sample is charged to the first frame, from the leaf up, that belongs to a package
 * (`node_modules/<name>`) or to this repository (`apps/<x>`, `packages/<x>`, `bench/<x>`), so a
 * library's system calls count as that library's. Node's internals and the kernel have no
 * package of their own and go to whoever called them.
 *
 *   node --perf-basic-prof-only-functions --interpreted-frames-native-stack …   (the process)
 *   perf record -F 1999 -g -p <pid> -o /tmp/perf.data -- sleep 15
 *   perf script -i /tmp/perf.data -F ip,sym > /tmp/perf.txt
 *   npx tsx bench/diagnostics/perf-by-package.ts /tmp/perf.txt [package to open]
 *
 * Caveat: perf's JIT map is append-only, so code V8 moved or collected can be shown under the
 * name of earlier code at the same address (module top-levels such as `Eval:~ …INCRBY.js`).
 */

type Stack = string[];

function readStacks(file: string): Stack[] {
  const stacks: Stack[] = [];
  let current: Stack = [];
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const frame = line.trim();
    if (frame === '') {
      if (current.length > 0) stacks.push(current);
      current = [];
    } else {
      current.push(frame.replace(/^[0-9a-f]+\s+/, ''));
    }
  }
  if (current.length > 0) stacks.push(current);
  return stacks;
}

function packageOf(frame: string): string | null {
  const dependency = /node_modules\/((?:@[^/]+\/)?[^/:]+)/.exec(frame);
  if (dependency) return dependency[1]!;
  const own = /\/((?:apps|packages|bench)\/[^/]+)\//.exec(frame);
  return own ? own[1]! : null;
}

function kernelFrame(frame: string): boolean {
  return /^(entry_SYSCALL|do_syscall|__x64_sys|ksys_|vfs_|tcp_|sock_|_raw_spin|finish_task_switch|schedule)/.test(
    frame,
  );
}

function table(counts: Map<string, number>, total: number, rows: number): string {
  return [...counts]
    .sort((a, b) => b[1] - a[1])
    .slice(0, rows)
    .map(([name, n]) => `${((100 * n) / total).toFixed(1).padStart(5)} %  ${name}`)
    .join('\n');
}

const [file, open] = process.argv.slice(2);
if (!file) {
  console.error('usage: perf-by-package.ts <perf script -F ip,sym output> [package]');
  process.exit(2);
}
const stacks = readStacks(file);
const byPackage = new Map<string, number>();
const inPackage = new Map<string, number>();
let kernelInPackage = 0;
for (const stack of stacks) {
  const at = stack.findIndex((frame) => packageOf(frame) !== null);
  const owner = at < 0 ? `(no package) ${stack[0]!.slice(0, 60)}` : packageOf(stack[at]!)!;
  byPackage.set(owner, (byPackage.get(owner) ?? 0) + 1);
  if (open !== undefined && owner === open) {
    const fn = stack[at]!.replace(/^JS:[*~^]?/, '').replace(/(file:\/\/)?\/\S*node_modules\//, '');
    inPackage.set(fn, (inPackage.get(fn) ?? 0) + 1);
    if (stack.slice(0, at).some(kernelFrame)) kernelInPackage += 1;
  }
}
console.log(`${stacks.length} samples, share of on-CPU samples by package:`);
console.log(table(byPackage, stacks.length, 30));
if (open !== undefined) {
  const kernelPct = ((100 * kernelInPackage) / stacks.length).toFixed(1);
  console.log(`\n${open}, by its first frame (${kernelPct} % of all samples in the kernel under it):`);
  console.log(table(inPackage, stacks.length, 20));
}
