import { readFileSync } from 'node:fs';

/**
 * Prints a BENCH_ORDER_TIMELINE file per step and per 100 ms of sending: how many orders, and
 * the worst and 90th-percentile POST → answer and POST → event in each slice, so one stall
 * shows as a few slices of late orders and queueing as a slow climb.
 *
 *   npx tsx bench/diagnostics/order-timeline-report.ts <file> [rate]
 */
const [file, only] = process.argv.slice(2);
if (!file) {
  console.error('usage: order-timeline-report.ts <timeline file> [rate]');
  process.exit(2);
}
const pct = (values: number[], p: number) => {
  const sorted = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]! : NaN;
};
for (const line of readFileSync(file, 'utf8').split('\n').filter(Boolean)) {
  const step = JSON.parse(line) as {
    rate: number;
    wallMs: number;
    monoMs: number;
    orders: [number, number, number | null][];
  };
  if (only !== undefined && step.rate !== Number(only)) continue;
  const t0 = step.orders[0]?.[0] ?? 0;
  const slices = new Map<number, { http: number[]; event: number[] }>();
  for (const [at, answered, event] of step.orders) {
    const slice = Math.floor((at - t0) / 100);
    const bucket = slices.get(slice) ?? { http: [], event: [] };
    bucket.http.push(answered - at);
    bucket.event.push(event === null ? Infinity : event - at);
    slices.set(slice, bucket);
  }
  const all = step.orders.map(([at, , event]) => (event === null ? Infinity : event - at));
  const wallStart = new Date(step.wallMs - (step.monoMs - t0)).toISOString();
  console.log(
    `rate ${step.rate}/s from ${wallStart}: ${step.orders.length} orders, event p99 ${pct(all, 0.99).toFixed(1)} ms`,
  );
  const ms = (value: number) => value.toFixed(1).padStart(6);
  for (const [slice, { http, event }] of [...slices].sort((a, b) => a[0] - b[0])) {
    const worst = Math.max(...event);
    const at = `${(slice / 10).toFixed(1).padStart(5)} s  n ${String(http.length).padStart(4)}`;
    const answers = `http p90 ${ms(pct(http, 0.9))} max ${ms(Math.max(...http))}`;
    const events = `event p90 ${ms(pct(event, 0.9))} max ${ms(worst)}`;
    console.log(`  ${at}  ${answers}  ${events}${worst >= 50 ? ' <' : ''}`);
  }
}
