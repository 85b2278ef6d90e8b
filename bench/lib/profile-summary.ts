import { readFileSync } from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
  children?: number[];
}

export interface HotSpot {
  /** Share of the busy samples (all but idle) spent in the function itself, %. */
  selfPct: number;
  name: string;
}

/**
 * Top functions by self time from a V8 `.cpuprofile` (`node --cpu-prof`), with file and line,
 * so a profile can be read without DevTools. Idle samples are left out; GC appears as
 * `(garbage collector)`.
 */
export function hotSpots(file: string, top = 25): HotSpot[] {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as { nodes: ProfileNode[] };
  const selfByName = new Map<string, number>();
  let total = 0;
  for (const node of profile.nodes) {
    const hits = node.hitCount ?? 0;
    const { functionName, url, lineNumber } = node.callFrame;
    // Shares are of the time the thread was busy: idle time says nothing about the hot path.
    if (functionName === '(idle)') continue;
    total += hits;
    const path = url.replace(/^.*\/node_modules\//, '').replace(/^file:\/\/.*?\/(apps|packages|bench)\//, '$1/');
    const where = url ? `${path}:${lineNumber + 1}` : '';
    const name = `${functionName || '(anonymous)'}${where ? ` ${where}` : ''}`;
    selfByName.set(name, (selfByName.get(name) ?? 0) + hits);
  }
  return [...selfByName.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([name, hits]) => ({ name, selfPct: Math.round((hits / total) * 1000) / 10 }));
}

// `tsx bench/lib/profile-summary.ts file.cpuprofile [top]` prints the table.
if (import.meta.url === `file://${process.argv[1]}`) {
  const [file, top] = process.argv.slice(2);
  if (!file) throw new Error('usage: profile-summary <file.cpuprofile> [top]');
  for (const spot of hotSpots(file, Number(top ?? 25)))
    console.log(`${spot.selfPct.toFixed(1).padStart(5)}%  ${spot.name}`);
}
