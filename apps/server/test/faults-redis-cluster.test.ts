import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import calculateSlot from 'cluster-key-slot';
import { partitionedChannelLayout } from '@repo/broker';
import { createTestDatabase, freePort, RedisCluster, TradewireProcess } from '@repo/test-support';
import {
  assertClean,
  committedSeqs,
  OrderBurst,
  registerUsers,
  settleAndCount,
  WatchingClient,
  type TestUser,
} from './fault-harness.ts';

/**
 * Delivery through a Redis Cluster failover: a private cluster of 3 masters and 3 replicas, one
 * API (+ price worker) process publishing with SPUBLISH through its outbox relay, two gateway
 * processes subscribed with SSUBSCRIBE to their users' partitions. A master that serves some of
 * the users' partitions is SIGKILLed during a burst of orders; its replica takes over; every
 * committed order must reach its user's client exactly once, in order.
 */
describe('delivery through a Redis Cluster failover', () => {
  const partitions = 16;
  const layout = partitionedChannelLayout(partitions);
  let cluster: RedisCluster;
  let database: Awaited<ReturnType<typeof createTestDatabase>>;
  const procs: TradewireProcess[] = [];
  const watchers: WatchingClient[] = [];

  before(async () => {
    [cluster, database] = await Promise.all([RedisCluster.start(), createTestDatabase('faults_cluster')]);
  });

  after(async () => {
    for (const w of watchers) w.close();
    await Promise.allSettled(procs.map((p) => p.stop('SIGKILL')));
    await database?.drop().catch(() => {});
    await cluster?.stop();
  });

  it('a master SIGKILLed mid-burst: its replica takes over and every order event arrives once', async () => {
    const env = {
      PORT: String(await freePort()),
      REDIS_CLUSTER_NODES: cluster.rootNodes,
      REDIS_PARTITIONS: String(partitions),
      DATABASE_URL: database.url,
      PRICE_INTERVAL_MS: '200',
    };
    const api = new TradewireProcess(['api', 'worker'], env);
    procs.push(api);
    const apiUrl = (await api.ready).api!;
    const gatewayPorts = [await freePort(), await freePort()];
    const gateways = gatewayPorts.map((port) => new TradewireProcess(['ws'], { ...env, WS_PORT: String(port) }));
    procs.push(...gateways);
    await Promise.all(gateways.map((g) => g.ready));
    const routes = () => gatewayPorts.map((port) => `ws://127.0.0.1:${port}`);

    // Users whose partitions lie on every master, so the killed one serves some and not others.
    const users: TestUser[] = await registerUsers(apiUrl, 6, 'cluster');
    const masterOf = async (user: TestUser) =>
      cluster.masterOfSlot(calculateSlot(layout.privateChannel('order_filled', layout.partitionOf(user.userId))));
    const owners = await Promise.all(users.map(masterOf));
    const victim = owners[0]!;
    assert.ok(
      owners.some((port) => port !== victim),
      'some users live on other masters',
    );

    const clients = users.map((user) => new WatchingClient(user, routes));
    watchers.push(...clients);
    await Promise.all(clients.map((c) => c.start()));
    const burst = new OrderBurst(() => apiUrl, users);
    await burst.reach(40);
    const killed = await cluster.killMaster(victim);
    const atKill = burst.committedAnswers;
    // Orders keep committing during the failover: the request never waits on the broker.
    await burst.reach(atKill + 20);
    const { tookMs } = await killed.promoted();
    await burst.reach(burst.committedAnswers + 40);
    await burst.stop();

    const expected = await committedSeqs(
      database.url,
      users.map((u) => u.userId),
    );
    const figures = await settleAndCount('redis cluster master SIGKILL', clients, expected);
    console.log(
      `[fault figures] ${JSON.stringify({
        failoverMs: tookMs,
        ordersDuringFailover: burst.committedAnswers - atKill,
        usersOnKilledMaster: owners.filter((port) => port === victim).length,
        wireDuplicates: figures.wireDuplicates,
      })}`,
    );
    assertClean(figures);
    assert.equal(figures.wireDuplicates, 0, 'the gateways dropped the republished duplicates');
  });
});
