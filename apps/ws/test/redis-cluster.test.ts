import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import calculateSlot from 'cluster-key-slot';
import { createClient } from 'redis';
import {
  PRIVATE_EVENT_KINDS,
  connectRedisClusterBroker,
  createEventPublisher,
  partitionedChannelLayout,
  type RedisClusterBroker,
} from '@repo/broker';
import { RedisCluster, type TestClient, waitFor } from '@repo/test-support';
import { startGateway, StubSessions, type GatewayFixture } from './gateway-fixture.ts';

/**
 * Gateways on a real Redis Cluster (3 masters, 3 replicas) with the partitioned layout: the
 * sharded subscriptions a gateway holds as users come and go, and the share of the private
 * events published that reaches each of 4 gateways, depending on how users are spread over them.
 */

const PARTITIONS = 16;
const GATEWAYS = 4;
const layout = partitionedChannelLayout(PARTITIONS);
const fast = { baseDelayMs: 20, maxDelayMs: 200, refreshMaxDelayMs: 200 };

const fill = (userId: number, seq: number) => ({
  userId,
  orderId: userId * 100 + seq,
  side: 'buy' as const,
  baseAsset: 'SOL',
  quoteAsset: 'USD',
  executedPrice: '10',
  executedSize: '1',
  fee: '0',
  seq,
});

/** A small deterministic generator, so that a "random" placement is the same on every run. */
function seeded(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}

describe('gateways on a Redis Cluster', () => {
  let cluster: RedisCluster;
  let publisherBroker: RedisClusterBroker;
  const sessions = new StubSessions();
  const gateways: GatewayFixture[] = [];

  /** Sharded subscribers of `channel` at the master that owns its slot. */
  async function shardSubscribers(channel: string): Promise<number> {
    const port = await cluster.masterOfSlot(calculateSlot(channel));
    const node = createClient({ socket: { host: '127.0.0.1', port } });
    await node.connect();
    try {
      const [, count] = await node.sendCommand<[string, number]>(['PUBSUB', 'SHARDNUMSUB', channel]);
      return Number(count);
    } finally {
      node.destroy();
    }
  }

  before(async () => {
    cluster = await RedisCluster.start();
    const nodes = cluster.rootNodes.split(',');
    publisherBroker = await connectRedisClusterBroker(nodes, fast);
    for (let g = 0; g < GATEWAYS; g++) {
      gateways.push(
        await startGateway({
          broker: await connectRedisClusterBroker(nodes, fast),
          sessions,
          channelLayout: layout,
          symbols: ['SOL', 'BTC'],
        }),
      );
    }
  });

  after(async () => {
    for (const fx of gateways) {
      await fx.close();
      await fx.broker.close();
    }
    await publisherBroker?.close();
    await cluster?.stop();
  });

  it('holds SSUBSCRIBEs of a partition on its master while a user of it is authenticated', async () => {
    const fx = gateways[0]!;
    const channels = PRIVATE_EVENT_KINDS.map((kind) => layout.privateChannel(kind, 5));
    for (const channel of [...channels, layout.privateChannel('order_filled', 6)]) {
      assert.equal(await shardSubscribers(channel), 0, `${channel} before any user`);
    }
    for (const symbol of ['SOL', 'BTC']) assert.equal(await shardSubscribers(layout.priceChannel(symbol)), 4);

    const first = await fx.connectAs(5);
    // Subscribed before auth_ok was sent, not merely by now.
    for (const channel of channels) assert.equal(await shardSubscribers(channel), 1, `${channel} after auth`);
    const second = await fx.connectAs(21); // 21 mod 16 = 5
    assert.equal(await shardSubscribers(layout.privateChannel('portfolio', 5)), 1, 'one subscription per process');
    assert.equal(await shardSubscribers(layout.privateChannel('order_filled', 6)), 0);

    first.client.ws.close();
    await first.client.closed;
    assert.equal(await shardSubscribers(layout.privateChannel('order_filled', 5)), 1, 'user 21 still here');
    second.client.ws.close();
    await second.client.closed;
    for (const channel of channels) {
      await waitFor(async () => (await shardSubscribers(channel)) === 0, { what: `${channel} dropped` });
    }
  });

  it('measures the share of private events each of 4 gateways receives, by how users are spread', async () => {
    const publisher = createEventPublisher(publisherBroker, { layout });
    const fillsPerUser = 2;
    const placements: { name: string; users: number; gatewayOf: (userId: number) => number }[] = [
      // A load balancer that routes by user partition (e.g. on a hash of the user id).
      { name: 'by partition', users: 64, gatewayOf: (u) => Math.floor((u % PARTITIONS) / (PARTITIONS / GATEWAYS)) },
      // Connections spread without regard to the user, as a round-robin balancer does.
      ...[16, 64, 256].map((users) => {
        const random = seeded(users);
        const placed = new Map(Array.from({ length: users }, (_, i) => [i + 1, Math.floor(random() * GATEWAYS)]));
        return { name: 'random', users, gatewayOf: (u: number) => placed.get(u)! };
      }),
    ];
    const figures: Record<string, unknown>[] = [];
    for (const placement of placements) {
      const userIds = Array.from({ length: placement.users }, (_, i) => i + 1);
      const before = await Promise.all(gateways.map((fx) => receivedFills(fx)));
      const clients = new Map<number, TestClient>();
      for (const userId of userIds) {
        const { client } = await gateways[placement.gatewayOf(userId)]!.connectAs(userId);
        await client.request({ type: 'subscribe', channel: 'orders' });
        clients.set(userId, client);
      }
      for (let seq = 1; seq <= fillsPerUser; seq++) {
        for (const userId of userIds) await publisher.publishOrderFilled(fill(userId, seq));
      }
      // Every socket gets its own user's fills, and nobody else's.
      for (const [userId, client] of clients) {
        await client.waitFor((m) => m.type === 'order_filled' && m.seq === fillsPerUser, 10_000);
        const got = client.ofType('order_filled');
        assert.ok(got.length === fillsPerUser && got.every((m) => m.userId === userId), `user ${userId}`);
      }
      // Each gateway receives exactly the events of the partitions its users are in.
      const published = placement.users * fillsPerUser;
      const shares: number[] = [];
      for (const [g, fx] of gateways.entries()) {
        const held = new Set(userIds.filter((u) => placement.gatewayOf(u) === g).map((u) => layout.partitionOf(u)));
        const expected = userIds.filter((u) => held.has(layout.partitionOf(u))).length * fillsPerUser;
        await waitFor(async () => (await receivedFills(fx)) - before[g]! === expected, {
          timeoutMs: 5000,
          what: `gateway ${g} to receive the ${expected} fills of its ${held.size} partitions`,
        });
        shares.push(expected / published);
      }
      figures.push({
        placement: placement.name,
        users: placement.users,
        published,
        receivedShare: shares.map((s) => Number(s.toFixed(3))),
        meanShare: Number((shares.reduce((a, b) => a + b, 0) / GATEWAYS).toFixed(3)),
      });
      if (placement.name === 'by partition') assert.deepEqual(shares, [0.25, 0.25, 0.25, 0.25]);
      for (const client of clients.values()) client.ws.close();
      await Promise.all([...clients.values()].map((client) => client.closed));
      for (const fx of gateways) {
        await waitFor(async () => (await fx.metric('tradewire_ws_broker_partitions')) === 0, {
          what: 'every partition dropped once the users left',
        });
      }
    }
    console.log(`[scaling figures] ${JSON.stringify(figures)}`);
  });
});

function receivedFills(fx: GatewayFixture): Promise<number> {
  return fx.metric('tradewire_ws_broker_messages_total', { kind: 'order_filled' });
}
