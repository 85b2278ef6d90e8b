/**
 * Diagnosis only: a second Redis subscriber for the private scenario's order events, to run
 * pinned beside redis-server while a bench runs, e.g.
 *
 *   taskset -c 1 node --import tsx bench/diagnostics/probe-subscriber.ts redis://127.0.0.1:<bench port> /tmp/probe.json
 *
 * It stamps each event's arrival on the bench's one clock and writes `[seq, monoMs][]` when
 * Redis goes away or on SIGTERM. Set against the gateway's own arrival stamps
 * (BENCH_ARRIVALS) and the generator's tail (BENCH_DEBUG), it tells a delay on the Redis side
 * (this subscriber was late too) from one on the gateway's side (only the gateway was).
 * Sequence numbers restart at 1 in every window, so one file holds every window of a bench
 * run: split it by time. And it is one more subscriber for redis-server to serve on CPU 1,
 * so it lengthens a little the leg it measures.
 */
import { writeFileSync } from 'node:fs';
import { createClient } from 'redis';
import { redisKeys } from '@repo/redis';
import { ArrivalLog } from './arrival-log.ts';

const [url, out] = process.argv.slice(2);
if (!url || !out) {
  process.stderr.write('usage: bench/diagnostics/probe-subscriber.ts <redis url> <out.json>\n');
  process.exit(2);
}
const log = new ArrivalLog();
function dump(): void {
  writeFileSync(out!, log.toJson());
  process.exit(0);
}
const subscriber = createClient({ url, socket: { reconnectStrategy: false } });
subscriber.on('error', dump);
await subscriber.connect();
await subscriber.subscribe(redisKeys.CHANNELS.orderFilled(), (message) => log.record(message));
process.on('SIGTERM', dump);
process.on('SIGINT', dump);
