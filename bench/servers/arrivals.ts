import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Broker } from '@repo/broker';
import { fastMonoClock } from '../lib/clock.ts';

/**
 * Diagnosis only (BENCH_ARRIVALS): wraps `broker.subscribe` so every handler first stamps the
 * arrival of an order event (its `orderId` is the bench's sequence number), and writes
 * `[seq, monoMs][]` to `<dir>/arrivals-<pid>.json` when the process exits.
 */
export function recordArrivals(broker: Broker, dir: string): void {
  const now = fastMonoClock();
  const seqs: number[] = [];
  const times: number[] = [];
  const waits: number[] = [];
  const sched = process.env.BENCH_ARRIVALS_SCHED === '1';
  const subscribe = broker.subscribe.bind(broker);
  broker.subscribe = (channel, handler) =>
    subscribe(channel, (message, ch) => {
      const t = now();
      const match = /"orderId":(\d+)/.exec(message);
      if (match) {
        seqs.push(Number(match[1]));
        times.push(t);
        // Run-queue wait of this thread so far (ms; schedstat counts ns): did a late arrival wait
        // for the CPU? One file read per event: such runs split a tail, they are not figures.
        if (sched) waits.push(Number(readFileSync('/proc/thread-self/schedstat', 'utf8').split(' ')[1]) / 1e6);
      }
      handler(message, ch);
    });
  process.on('exit', () => {
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, `arrivals-${process.pid}.json`), JSON.stringify(seqs.map((s, i) => (sched ? [s, times[i], waits[i]] : [s, times[i]]))));
  });
}
