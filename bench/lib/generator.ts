import type { EndToEndSpec } from '../load/end-to-end.ts';
import type { PartitionShareSpec } from '../load/partition-share.ts';
import type { LoadSpec } from '../load/scenarios.ts';
import { nextMessage, spawnNodeTs, type PinnedProcess } from './processes.ts';

export interface RunOptions {
  timeoutMs: number;
  whileConnected?: () => Promise<void>;
  /** Called when the measured window opens and closes. */
  onWindow?: (phase: 'start' | 'end') => void;
  /** Called once the clients are connected, before anything is measured; the generator waits for it. */
  onSettle?: () => Promise<void>;
}

export interface Generator {
  /**
   * Runs one scenario and returns its result. `whileConnected` (idle scenario) runs once every
   * client is connected; the clients are released when it resolves.
   */
  run<R>(spec: LoadSpec | EndToEndSpec | PartitionShareSpec, options: RunOptions): Promise<R>;
  /** Stops the process if it is still running (it exits by itself after a run). */
  stop(): Promise<void>;
}

/**
 * Starts a load-generator process pinned to `core`. It boots (seconds under tsx) while the
 * server under test starts, and waits for its one `run` message. A process per run: no state
 * (clients, buffers, JIT warm-up) carries over from one server to the next.
 */
export function startGenerator(core: number): Generator {
  // BENCH_GENERATOR_NODE_FLAGS (e.g. `--cpu-prof`) profiles the generator itself.
  const flags = (process.env.BENCH_GENERATOR_NODE_FLAGS ?? '').split(' ').filter(Boolean);
  // The generator must not pause inside a measured window: a pause is stamped onto every
  // delivery it was about to read. So: 64 MiB semi-spaces (the young generation) from the
  // start, since V8 grows them from 1 MiB only as objects survive (with 1,000 sockets they
  // stayed small and the generator collected every few seconds; with 10,000 sockets one minor
  // GC took 10–40 ms); and no memory reducer, which follows the settle step's full GC with
  // more of them (1–7 ms each) seconds later, inside the window.
  // --expose-gc: the settle step (window-signal.ts) collects the connection burst's garbage.
  const gcFlags = ['--expose-gc', '--min-semi-space-size=64', '--max-semi-space-size=64', '--no-memory-reducer'];
  const proc: PinnedProcess = spawnNodeTs(core, 'bench/load/main.ts', [], [...gcFlags, ...flags]);
  const stop = async () => {
    // The generator exits by itself after its result (writing a profile takes a moment).
    await Promise.race([proc.exited, new Promise((resolve) => setTimeout(resolve, 5000))]);
    await proc.stop();
  };
  return {
    async run<R>(
      spec: LoadSpec | EndToEndSpec | PartitionShareSpec,
      { timeoutMs, whileConnected, onWindow, onSettle }: RunOptions,
    ) {
      const onMessage = (raw: unknown) => {
        const message = raw as { type: string; phase?: 'start' | 'end' };
        if (message.type === 'window' && message.phase) onWindow?.(message.phase);
        else if (message.type === 'settle') {
          // Best effort, like the window stats: a server that cannot answer still gets measured.
          void (onSettle?.() ?? Promise.resolve()).catch(() => {}).then(() => proc.child.send({ type: 'settled' }));
        }
      };
      proc.child.on('message', onMessage);
      try {
        const result = nextMessage<{ type: 'result'; result: R }>(proc, 'result', timeoutMs);
        result.catch(() => {});
        proc.child.send({ type: 'run', spec });
        if (whileConnected) {
          await nextMessage(proc, 'connected', timeoutMs);
          await whileConnected();
          proc.child.send({ type: 'release' });
        }
        return (await result).result;
      } finally {
        proc.child.off('message', onMessage);
        await stop();
      }
    },
    stop,
  };
}
