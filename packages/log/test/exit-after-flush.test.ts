import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { it } from 'node:test';

const FIXTURE = fileURLToPath(new URL('./fixtures/flood-then-exit.ts', import.meta.url));

/** Starts the fixture, lets its stdout fill up, sends SIGTERM, then closes that pipe. */
async function exitWithReaderGone(args: string[]): Promise<{ code: number | null; ms: number }> {
  const child = spawn(process.execPath, ['--import', 'tsx', FIXTURE, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  // Never read: the pipe fills, and lines wait in the logger for it.
  child.stdout.pause();
  await new Promise<void>((resolve) =>
    child.stderr.on('data', (d: Buffer) => String(d).includes('ready') && resolve()),
  );
  const exited = once(child, 'exit') as Promise<[number | null, string | null]>;
  // The process is asked to stop, and its log reader, which had stopped reading, goes away
  // while it exits (a log shipper that hung, then died).
  const started = Date.now();
  child.kill('SIGTERM');
  setTimeout(() => child.stdout.destroy(), 200);
  const timer = setTimeout(() => child.kill('SIGKILL'), 8000);
  const [code] = await exited;
  clearTimeout(timer);
  return { code, ms: Date.now() - started };
}

it('exits on SIGTERM though its log reader stopped reading and went away', async () => {
  const { code, ms } = await exitWithReaderGone([]);
  assert.equal(code, 0, `exited with ${code} after ${ms} ms (null: killed after 8 s, it hung)`);
});

it('a bare process.exit hangs there, which is why the launcher does not use it', async () => {
  const { code } = await exitWithReaderGone(['bare']);
  assert.equal(code, null, 'sonic-boom retries the broken pipe for ever: killed after 8 s');
});
