import { createConnection } from 'node:net';

/**
 * Resolves once something accepts TCP connections on 127.0.0.1:`port`; rejects after
 * `timeoutMs`, or as soon as `gone()` says the process that should listen has exited.
 */
export async function waitForPort(
  port: number,
  {
    timeoutMs = 5000,
    what = 'a server',
    gone = () => false,
  }: { timeoutMs?: number; what?: string; gone?: () => boolean } = {},
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (gone()) throw new Error(`${what} exited before listening on ${port}`);
    const ok = await new Promise<boolean>((resolve) => {
      const socket = createConnection({ port, host: '127.0.0.1' });
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`${what} did not listen on ${port} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
