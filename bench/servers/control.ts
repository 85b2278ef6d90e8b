/**
 * The runner's handle on a bench server process: the server reports `ready` with its port over
 * the IPC channel, answers `memory` requests (after a full GC, when started with --expose-gc)
 * and stops on SIGTERM or a `stop` request. Shared by the three servers so that each is
 * measured the same way.
 */

export interface ServerMemory {
  rss: number;
  heapUsed: number;
  external: number;
  arrayBuffers: number;
}

export type ControlRequest = { cmd: 'memory' } | { cmd: 'stop' };
export type ControlReply =
  | { type: 'ready'; port: number; pid: number }
  | ({ type: 'memory' } & ServerMemory);

const STOP_DEADLINE_MS = 4000;

function send(reply: ControlReply): void {
  process.send?.(reply);
}

async function collectGarbage(): Promise<void> {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) return;
  // Two passes with a turn of the event loop between them: the first frees objects whose
  // finalisers release more (weak refs, buffers), the second collects those.
  gc();
  await new Promise((resolve) => setImmediate(resolve));
  gc();
}

/** Wires the control channel for a server that listens on `port`; `close` stops it. */
export function serveControl(port: number, close: () => Promise<void>): void {
  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    setTimeout(() => process.exit(1), STOP_DEADLINE_MS).unref();
    close().then(
      () => process.exit(0),
      (err: unknown) => {
        process.stderr.write(`bench server: error while closing: ${String(err)}\n`);
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  // The runner going away (crash, Ctrl-C) closes the channel: never outlive it.
  process.on('disconnect', stop);
  process.on('message', (raw: unknown) => {
    const request = raw as ControlRequest;
    if (request.cmd === 'stop') stop();
    else if (request.cmd === 'memory') {
      void collectGarbage().then(() => {
        const m = process.memoryUsage();
        send({ type: 'memory', rss: m.rss, heapUsed: m.heapUsed, external: m.external, arrayBuffers: m.arrayBuffers });
      });
    }
  });
  send({ type: 'ready', port, pid: process.pid });
}
