import { createConnection } from 'node:net';
import { sleep } from './clock.ts';
import { freePort } from './free-port.ts';
import { spawnPinned, type PinnedProcess } from './processes.ts';

/**
 * The benchmark's own redis-server: a free port, no persistence, pinned to the load generator's
 * core so that the server under test has its core to itself. The machine's shared Redis is
 * never touched.
 */
export async function startRedis(
  core: number,
): Promise<{ url: string; process: PinnedProcess; stop(): Promise<void> }> {
  const port = await freePort();
  const proc = spawnPinned(core, 'redis-server', [
    '--port',
    String(port),
    '--bind',
    '127.0.0.1',
    '--save',
    '',
    '--appendonly',
    'no',
    '--loglevel',
    'warning',
  ]);
  const deadline = Date.now() + 5000;
  while (!(await canConnect(port))) {
    if (Date.now() > deadline) {
      await proc.stop();
      throw new Error(`redis-server did not listen on ${port}: ${proc.stderr()}`);
    }
    await sleep(25);
  }
  return { url: `redis://127.0.0.1:${port}`, process: proc, stop: () => proc.stop() };
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ port, host: '127.0.0.1' });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}
