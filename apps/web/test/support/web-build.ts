import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readdirSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const WEB = fileURLToPath(new URL('../../', import.meta.url));
const DIST_INDEX = join(WEB, 'dist', 'index.html');
const SOURCES = ['src', 'public', 'index.html', 'vite.config.ts'].map((p) => join(WEB, p));

function newestMtime(path: string): number {
  if (!existsSync(path)) return 0;
  const stat = statSync(path);
  if (!stat.isDirectory()) return stat.mtimeMs;
  return Math.max(0, ...readdirSync(path).map((name) => newestMtime(join(path, name))));
}

/**
 * The built page to serve: apps/web/dist when it is newer than every source file (as after
 * `npm start`'s build), else a fresh build in a temp folder. Building to a private folder
 * keeps test files that run at the same time from emptying each other's dist.
 */
export async function webBuildDir(): Promise<string> {
  if (existsSync(DIST_INDEX) && statSync(DIST_INDEX).mtimeMs >= Math.max(...SOURCES.map(newestMtime))) {
    return join(WEB, 'dist');
  }
  const outDir = mkdtempSync(join(tmpdir(), 'tradewire-web-'));
  const vite = fileURLToPath(new URL('../../../../node_modules/.bin/vite', import.meta.url));
  const child = spawn(vite, ['build', '--outDir', outDir, '--emptyOutDir', '--logLevel', 'warn'], { cwd: WEB, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const [code] = (await once(child, 'exit')) as [number | null];
  if (code !== 0) throw new Error(`vite build failed (${code}):\n${stderr}`);
  return outDir;
}
