/**
 * What the diagnosis probes (heap, fan-out, memory) share: one gateway process (`workers: 0`)
 * on its own Redis and scratch database, and batches of idle sockets subscribed to `prices`,
 * opened by the connections benchmark's load processes. Each batch is one load process on
 * loopback source addresses of its own, so batches can be added one after another.
 */
import { sleep } from '../lib/clock.ts';
import { freePort } from '../lib/free-port.ts';
import { startRedis } from '../lib/redis-server.ts';
import { createScratchDatabase } from '../lib/scratch-database.ts';
import { GatewayNode } from './gateway-node.ts';
import { LoadFleet } from './load-fleet.ts';
import { CONNECTIONS_DEFAULTS } from './run-connections.ts';

export interface ProbeNode {
  readonly node: GatewayNode;
  readonly redisUrl: string;
  /** The gateway process's PID (`workers: 0`: the node is one process). */
  readonly pid: number;
  /**
   * Opens `count` sockets in one more load process and resolves once all are subscribed.
   * Batches must be numbered apart (0, 1, …): each gets its own loopback source addresses.
   */
  openSockets(count: number, batch: number): Promise<LoadFleet>;
  /** Stops the load processes, the node, the database and Redis. */
  stop(): Promise<void>;
}

/**
 * Starts the gateway process for up to `maxSockets` sockets and waits `settleMs` after it is
 * up, so that start-up work does not land in the first reading.
 */
export async function startProbeNode(
  name: string,
  options: { maxSockets: number; nodeFlags?: string[]; settleMs?: number },
): Promise<ProbeNode> {
  const redis = await startRedis(1);
  const db = await createScratchDatabase(`bench_${name}`);
  const node = new GatewayNode({
    port: await freePort(),
    redisUrl: redis.url,
    databaseUrl: db.url,
    workers: 0,
    maxConnections: options.maxSockets + 1000,
    ...(options.nodeFlags ? { nodeFlags: options.nodeFlags } : {}),
  });
  await node.start();
  await sleep(options.settleMs ?? 3000);
  const fleets: LoadFleet[] = [];
  return {
    node,
    redisUrl: redis.url,
    pid: node.pid,
    async openSockets(count, batch) {
      const { perAddress, openConcurrency } = CONNECTIONS_DEFAULTS;
      const addresses = Array.from({ length: Math.ceil(count / perAddress) }, (_, a) => `127.0.${batch + 1}.${a + 1}`);
      const fleet = await LoadFleet.start([
        { host: '127.0.0.1', port: node.options.port, addresses, clients: count, openConcurrency },
      ]);
      fleets.push(fleet);
      fleet.send({ type: 'open' });
      await fleet.gather('opened', 300_000);
      return fleet;
    },
    async stop() {
      await Promise.all(fleets.map((fleet) => fleet.stop()));
      await node.stop();
      await db.drop();
      await redis.stop();
    },
  };
}
