import { readFileSync } from 'node:fs';

/**
 * Prints a `.heapprofile` (V8's sampling heap profiler: promoted-sample-probe.ts, DevTools) as
 * bytes by package and by allocating function: each sample is charged to the first frame of a
 * package or of the repository's own code, counting from the allocation.
 *
 *   npx tsx bench/diagnostics/heap-profile-report.ts <file.heapprofile> [rows]
 */
interface Node {
  callFrame: { functionName: string; url: string; lineNumber: number };
  selfSize: number;
  children: Node[];
}

const [file, rowsArg = '25'] = process.argv.slice(2);
if (!file) {
  console.error('usage: heap-profile-report.ts <file.heapprofile> [rows]');
  process.exit(2);
}
const { head } = JSON.parse(readFileSync(file, 'utf8')) as { head: Node };
const bySite = new Map<string, number>();
const byPackage = new Map<string, number>();
let total = 0;
const add = (map: Map<string, number>, key: string, bytes: number) => map.set(key, (map.get(key) ?? 0) + bytes);
const shortUrl = (url: string) =>
  url.replace(/.*node_modules\//, 'nm/').replace(/^file:\/\/.*?\/(apps|packages|bench)\//, '$1/');
const frameOf = ({ callFrame: f }: Node) => `${f.functionName || '(anonymous)'} ${shortUrl(f.url)}`;
const packageOf = (frame: string) => {
  const where = frame.split(' ').slice(1).join(' ');
  return /^nm\//.test(where) ? where.replace(/^(nm\/(@[^/]+\/)?[^/]+).*/, '$1') : where;
};

// Iterative: a deep profile would overflow the stack of a recursive walk.
const stack: { node: Node; frames: string[] }[] = [{ node: head, frames: [] }];
while (stack.length > 0) {
  const { node, frames } = stack.pop()!;
  const here = [frameOf(node), ...frames];
  if (node.selfSize > 0) {
    total += node.selfSize;
    add(bySite, here[0]!, node.selfSize);
    const owner = here.find((f) => /^\S+ (nm|apps|packages|bench)\//.test(f)) ?? here[0]!;
    add(byPackage, packageOf(owner), node.selfSize);
  }
  for (const child of node.children) stack.push({ node: child, frames: here.slice(0, 32) });
}
const rows = Number(rowsArg);
const print = (title: string, map: Map<string, number>) => {
  console.log(title);
  for (const [key, bytes] of [...map].sort((a, b) => b[1] - a[1]).slice(0, rows)) {
    console.log(
      `${(bytes / 1048576).toFixed(1).padStart(8)} MiB ${((100 * bytes) / total).toFixed(1).padStart(5)} %  ${key}`,
    );
  }
};
console.log(`${(total / 1048576).toFixed(1)} MiB sampled`);
print('by package (or file of this repository):', byPackage);
print('by allocating function:', bySite);
