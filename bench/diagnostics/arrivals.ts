import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Broker } from '@repo/broker';
import { ArrivalLog } from './arrival-log.ts';

/**
 * Diagnosis only (BENCH_ARRIVALS): wraps `broker.subscribe` so every handler first stamps the
 * arrival of an order event, and writes `[seq, monoMs][]` to `<dir>/arrivals-<pid>.json` when
 * the process exits. With BENCH_ARRIVALS_SCHED=1 each row also has the main thread's run-queue
 * wait so far (ms): did a late arrival wait for the CPU? That is one file read per event, so
 * such runs split a tail; they are not figures.
 */
export function recordArrivals(broker: Broker, dir: string): void {
  const log = new ArrivalLog();
  const runQueueWaitMs =
    process.env.BENCH_ARRIVALS_SCHED === '1'
      ? () => Number(readFileSync('/proc/thread-self/schedstat', 'utf8').split(' ')[1]) / 1e6
      : undefined;
  const subscribe = broker.subscribe.bind(broker);
  broker.subscribe = (channel, handler) =>
    subscribe(channel, (message, ch) => {
      log.record(message, runQueueWaitMs);
      handler(message, ch);
    });
  process.on('exit', () => {
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, `arrivals-${process.pid}.json`), log.toJson());
  });
}
