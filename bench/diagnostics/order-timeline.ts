import { appendFileSync } from 'node:fs';
import { monoMs } from '../lib/clock.ts';

/**
 * Diagnosis only (BENCH_ORDER_TIMELINE=<file>): appends one line of JSON per step of the order
 * ladder, `{rate, wallMs, monoMs, orders: [[sentMs, answeredMs, eventMs | null], …]}` on the client's monotonic
 * clock, to tell a tail made of one stall (a burst of late orders at one moment) from one spread
 * over the window (queueing). `order-timeline-report.ts` prints it per 100 ms.
 */
export function writeTimeline(
  file: string,
  rate: number,
  sent: readonly { at: number; answeredAt: number; orderId: number }[],
  events: ReadonlyMap<number, { at: number }>,
): void {
  const round = (ms: number) => Math.round(ms * 10) / 10;
  const orders = sent.map((s) => [
    round(s.at),
    round(s.answeredAt),
    s.orderId > 0 ? round(events.get(s.orderId)?.at ?? NaN) : null,
  ]);
  // The wall clock beside the monotonic one, to line the orders up with other processes' logs.
  appendFileSync(file, `${JSON.stringify({ rate, wallMs: Date.now(), monoMs: monoMs(), orders })}\n`);
}
