import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { after, before, test } from 'node:test';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { RedisServer } from '@repo/test-support';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

let redis: RedisServer;
before(async () => {
  redis = await RedisServer.start();
});
after(async () => {
  await redis.stop();
});

/**
 * Runs the launcher (the price worker role: quick, its database opened in the background) the
 * way `npm start` runs it in a terminal: `script` gives it a pseudo-terminal, so
 * `process.stdout.isTTY` is true. Resolves with the lines printed up to and including the one
 * announcing readiness.
 */
async function linesInTerminal(): Promise<string[]> {
  const command = `exec '${process.execPath}' --import tsx apps/server/src/main.ts worker`;
  const child = spawn('script', ['--quiet', '--flush', '--return', '--command', command, '/dev/null'], {
    cwd: ROOT,
    env: {
      ...process.env,
      REDIS_URL: redis.url,
      // Opened in the background by the worker role, for candles; readiness does not wait for it.
      DATABASE_URL: 'postgres://postgres@127.0.0.1:5432/unused',
      LOG_LEVEL: 'info',
      NO_COLOR: '1',
    },
    // stdin stays open: `script` ends the session when its input ends.
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const exited = once(child, 'exit');
  const lines: string[] = [];
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`not ready within 60 s:\n${lines.join('\n')}`)), 60_000);
      createInterface({ input: child.stdout }).on('line', (line) => {
        lines.push(line.replace(/\r$/, ''));
        if (line.includes('tradewire ready')) {
          clearTimeout(timer);
          resolve();
        }
      });
      void exited.then(() => {
        clearTimeout(timer);
        reject(new Error(`exited before ready:\n${lines.join('\n')}`));
      });
    });
  } finally {
    // `script` passes SIGTERM on to the launcher, which stops gracefully; should that not
    // happen, killing `script` closes the terminal and the launcher gets SIGHUP.
    child.kill('SIGTERM');
    const killer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(killer);
  }
  return lines;
}

test('in a terminal the launcher prints readable lines, not JSON', async () => {
  const lines = await linesInTerminal();
  const ready = lines.find((line) => line.includes('tradewire ready'))!;
  assert.match(ready, /^\[\d\d:\d\d:\d\d\.\d{3}\] INFO \(tradewire\): tradewire ready$/);
  assert.ok(!lines.some((line) => line.trimStart().startsWith('{')), `no JSON line:\n${lines.join('\n')}`);
  // The fields follow on their own lines, one per key.
  assert.ok(
    lines.some((line) => /^\s+broker: "redis"$/.test(line)),
    lines.join('\n'),
  );
});
