import { fastMonoClock } from '../lib/clock.ts';

/**
 * Diagnosis only: when each order event arrived somewhere, on the bench's one clock, keyed by
 * its `orderId` (the bench's sequence number). Shared by the gateway's arrival stamps
 * (bench/servers/arrivals.ts) and the probe subscriber beside Redis (bench/probe-subscriber.ts),
 * so the two files line up row for row.
 */
export class ArrivalLog {
  readonly #now = fastMonoClock();
  readonly #rows: number[][] = [];

  /** Stamps `message` if it is an order event; `extra` values (e.g. a run-queue wait) follow. */
  record(message: string, extra?: () => number): void {
    const t = this.#now();
    const match = /"orderId":(\d+)/.exec(message);
    if (match) this.#rows.push(extra ? [Number(match[1]), t, extra()] : [Number(match[1]), t]);
  }

  /** `[seq, monoMs, ...extra][]`. */
  toJson(): string {
    return JSON.stringify(this.#rows);
  }
}
