/**
 * The load generator process. The runner starts it pinned to its own core, sends one
 * `{type:'run', spec}` over IPC and gets back `{type:'result', result}` (or `{type:'error'}`).
 * The idle scenario also reports `{type:'connected'}` and waits for `{type:'release'}`, so the
 * runner can read the server's memory while every client is connected. The measured scenarios
 * send `{type:'settle'}` once connected and wait for `{type:'settled'}` (see window-signal.ts).
 */
import { runEndToEnd, type EndToEndSpec } from './end-to-end.ts';
import { runPartitionShare, type PartitionShareSpec } from './partition-share.ts';
import { runIdle, runLatency, runPrivate, runThroughput, type LoadSpec } from './scenarios.ts';
import { onSettled } from './window-signal.ts';

type Spec = LoadSpec | EndToEndSpec | PartitionShareSpec;
type RunnerMessage = { type: 'run'; spec: Spec } | { type: 'release' } | { type: 'settled' };

function send(message: unknown): Promise<void> {
  return new Promise((resolve) => {
    if (!process.send) return resolve();
    process.send(message, undefined, {}, () => resolve());
  });
}

let release: () => void = () => {};
const released = new Promise<void>((resolve) => (release = resolve));

async function run(spec: Spec): Promise<unknown> {
  switch (spec.scenario) {
    case 'throughput':
      return runThroughput(spec);
    case 'latency':
      return runLatency(spec);
    case 'private':
      return runPrivate(spec);
    case 'idle':
      return runIdle(spec, () => void send({ type: 'connected' }), released);
    case 'e2e':
      return runEndToEnd(spec);
    case 'partition-share':
      return runPartitionShare(spec);
  }
}

process.on('message', (raw: unknown) => {
  const message = raw as RunnerMessage;
  if (message.type === 'release') release();
  else if (message.type === 'settled') onSettled();
  else if (message.type === 'run') {
    run(message.spec).then(
      async (result) => {
        await send({ type: 'result', result });
        process.exit(0);
      },
      async (err: unknown) => {
        await send({ type: 'error', message: err instanceof Error ? (err.stack ?? err.message) : String(err) });
        process.exit(1);
      },
    );
  }
});
// The runner gone means nobody wants the result: stop rather than load a server forever.
process.on('disconnect', () => process.exit(2));
