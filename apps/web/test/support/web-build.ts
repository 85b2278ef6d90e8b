import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { waitFor } from '@repo/test-support';

const ROOT = fileURLToPath(new URL('../../../../', import.meta.url));
const WEB = join(ROOT, 'apps/web');
const DIST_INDEX = join(WEB, 'dist', 'index.html');
/** Everything the bundle is made of: the app and the workspace packages it imports. */
const SOURCES = [
  'apps/web/src',
  'apps/web/public',
  'apps/web/index.html',
  'apps/web/vite.config.ts',
  'packages/client/src',
  'packages/protocol/src',
  'packages/events/src',
  'packages/retry/src',
].map((p) => join(ROOT, p));
/** A build normally takes seconds; a lock older than this was left by a killed run. */
const STALE_LOCK_MS = 180_000;

function files(path: string): string[] {
  if (!existsSync(path)) return [];
  if (!statSync(path).isDirectory()) return [path];
  return readdirSync(path).flatMap((name) => files(join(path, name)));
}

async function viteBuild(outDir: string): Promise<void> {
  const vite = join(ROOT, 'node_modules/.bin/vite');
  const child = spawn(vite, ['build', '--outDir', outDir, '--emptyOutDir', '--logLevel', 'warn'], {
    cwd: WEB,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const [code] = (await once(child, 'exit')) as [number | null];
  if (code !== 0) throw new Error(`vite build failed (${code}):\n${stderr}`);
}

/**
 * The built page to serve: apps/web/dist when it is newer than every source file (as after
 * `npm start`'s build); else a build of the current sources in a temp folder named after
 * them, made once and shared by the test files running at the same time (a lock folder
 * makes one of them build while the others wait). Never touches apps/web/dist, which a
 * running `npm start` may be serving.
 */
export async function webBuildDir(): Promise<string> {
  const sourceFiles = SOURCES.flatMap(files);
  const stats = sourceFiles.map((f) => ({ f, s: statSync(f) }));
  if (existsSync(DIST_INDEX) && statSync(DIST_INDEX).mtimeMs >= Math.max(...stats.map(({ s }) => s.mtimeMs))) {
    return join(WEB, 'dist');
  }
  const key = createHash('sha256')
    .update(stats.map(({ f, s }) => `${f}:${s.size}:${s.mtimeMs}`).join('\n'))
    .digest('hex')
    .slice(0, 16);
  const dir = join(tmpdir(), `tradewire-web-${key}`);
  const index = join(dir, 'index.html');
  const lock = `${dir}.lock`;

  for (;;) {
    if (existsSync(index)) return dir;
    try {
      mkdirSync(lock);
    } catch {
      // Another test file builds these sources: wait for its result (or for it to give up).
      const age = Date.now() - (existsSync(lock) ? statSync(lock).mtimeMs : Date.now());
      if (age > STALE_LOCK_MS) rmSync(lock, { recursive: true, force: true });
      else
        await waitFor(() => existsSync(index) || !existsSync(lock), {
          timeoutMs: STALE_LOCK_MS,
          intervalMs: 100,
          what: 'the web build of another test file',
        });
      continue;
    }
    try {
      // Built beside the final folder and renamed into place, so nobody serves half a build.
      const partial = `${dir}.partial-${process.pid}`;
      await viteBuild(partial);
      rmSync(dir, { recursive: true, force: true });
      renameSync(partial, dir);
      return dir;
    } finally {
      rmSync(lock, { recursive: true, force: true });
    }
  }
}
