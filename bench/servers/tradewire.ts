/**
 * The gateway under test (`@repo/ws`) as its own process, built the way the launcher builds it
 * (apps/server/src/system.ts): a `RedisBroker` from `connectRedisBroker`, the session verifier,
 * `createGateway`.
 *
 * Every feature stays on, at its default, for every figure: zod validation of each event,
 * Prometheus metrics (delivered counters, the event-latency histogram), the per-socket rate
 * limiter, slow-consumer conflation (256 KiB soft) and the 4008 cut (1 MiB hard), the
 * heartbeat (25 s ping, 10 s pong deadline), the 16 KiB frame limit, the Origin check, the
 * connection cap, the request queue and auth concurrency caps. The defaults fit the benchmark
 * (the cap is 20,000 connections, the scenarios open at most 10,000, at most 100 at once;
 * clients send two messages each), so no limit is raised. One thing is lifted: every client
 * connects from 127.0.0.1, so that address is exempt from the per-address limits (upgrade rate,
 * open sockets), as it must be for any load test from one host.
 */
import { connectRedisBroker, partitionedChannelLayout } from '@repo/broker';
import { createLogger } from '@repo/log';
import { createGateway } from '@repo/ws';
import { recordArrivals } from '../diagnostics/arrivals.ts';
import { serverArgs } from './args.ts';
import { serveControl } from './control.ts';
import { openSessionVerifier } from './sessions.ts';

const args = serverArgs();
// Warnings and errors only: the gateway logs nothing per message, and the bench wants to see
// a slow-consumer cut or a Redis error if one happens.
const logger = createLogger({ level: 'warn', name: 'bench-tradewire' });
const sessions = await openSessionVerifier(args);
const broker = await connectRedisBroker(args.redisUrl, { logger });
// For diagnosis only (never set by `npm run bench`): BENCH_ARRIVALS=<dir> stamps each order
// event's arrival in the gateway's Redis handler (monoMs, the bench's one clock) and writes
// them to <dir>/arrivals-<pid>.json on exit, splitting a latency into Redis leg and gateway leg.
if (process.env.BENCH_ARRIVALS) recordArrivals(broker, process.env.BENCH_ARRIVALS);
// For diagnosis only (never set by `npm run bench`): BENCH_TRADEWIRE_LIMITS='{"pingIntervalMs":600000}'
// shows what one limit costs.
const limits = process.env.BENCH_TRADEWIRE_LIMITS
  ? (JSON.parse(process.env.BENCH_TRADEWIRE_LIMITS) as Record<string, number>)
  : undefined;
const gateway = await createGateway({
  broker,
  sessions: sessions.verifier,
  // Three symbols, so that the symbols scenario can split the clients over them; the other
  // scenarios publish SOL only.
  symbols: ['SOL', 'BTC', 'ETH'],
  allowedOrigins: ['http://127.0.0.1'],
  limitExempt: ['127.0.0.1'],
  // The scale scenario's routing share: private channels split by user partition, as on a
  // Redis Cluster (one Redis carries the same channel names), so a gateway subscribes only to
  // the partitions of the users it holds.
  ...(args.partitions === undefined ? {} : { channelLayout: partitionedChannelLayout(args.partitions) }),
  logger,
  ...(limits ? { limits } : {}),
});
const port = await gateway.listen(0, '127.0.0.1');
serveControl(port, async () => {
  await gateway.close();
  await Promise.allSettled([broker.close(), sessions.close()]);
});
