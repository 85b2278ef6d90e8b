import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import calculateSlot from 'cluster-key-slot';
import { createClient, createCluster } from 'redis';
import { createRedisClusterClient } from '@repo/redis';
import { RedisCluster, freePort, nextValue, waitFor } from '@repo/test-support';
import {
  BrokerCommandError,
  BrokerUnavailableError,
  RedisClusterBroker,
  connectRedisClusterBroker,
  createEventPublisher,
  createPriceStore,
  partitionedChannelLayout,
} from '../src/index.ts';
import { brokerContract } from './broker.contract.ts';
import { listen } from './listen.ts';

/** Fast reconnects and topology refreshes, so a failover is followed within a few hundred ms. */
const fast = { baseDelayMs: 20, maxDelayMs: 200, refreshMaxDelayMs: 200 };

describe('RedisClusterBroker', () => {
  let cluster: RedisCluster;
  const nodes = () => cluster.rootNodes.split(',');

  before(async () => {
    cluster = await RedisCluster.start();
  });
  after(async () => {
    await cluster?.stop();
  });

  /** Runs `args` on the node at `port` alone (no cluster routing). */
  async function onMaster(port: number, args: string[]): Promise<unknown> {
    const node = createClient({ socket: { host: '127.0.0.1', port } });
    await node.connect();
    try {
      return await node.sendCommand(args);
    } finally {
      node.destroy();
    }
  }

  /** How many connections of the node at `port` are subscribed to the sharded `channel`. */
  async function shardSubscribers(port: number, channel: string): Promise<number> {
    const [, count] = (await onMaster(port, ['PUBSUB', 'SHARDNUMSUB', channel])) as [string, number];
    return Number(count);
  }

  brokerContract(
    'RedisClusterBroker',
    async () => {
      for (const port of await cluster.masterPorts()) await onMaster(port, ['FLUSHALL']);
      return connectRedisClusterBroker(nodes(), fast);
    },
    {
      async killServerOf(channel) {
        const port = await cluster.masterOfSlot(calculateSlot(channel));
        const killed = await cluster.killMaster(port);
        return async () => {
          await killed.promoted();
          // Back as a replica of its successor, so a later test can fail this shard again.
          await cluster.restartNode(port);
        };
      },
    },
  );

  it('publishes with SPUBLISH to the shard that owns the channel and subscribes there once', async () => {
    const broker = await connectRedisClusterBroker(nodes(), fast);
    try {
      const channel = 'trading:events:order:filled:{3}';
      for (let i = 0; i < 5; i++) await broker.subscribe(channel, () => {});
      const owner = await cluster.masterOfSlot(calculateSlot(channel));
      for (const port of await cluster.masterPorts()) {
        const [, count] = (await onMaster(port, ['PUBSUB', 'SHARDNUMSUB', channel])) as [string, number];
        assert.equal(Number(count), port === owner ? 1 : 0, `sharded subscribers at ${port}`);
        // Nothing on the cluster-wide bus: no plain SUBSCRIBE anywhere.
        const [, plain] = (await onMaster(port, ['PUBSUB', 'NUMSUB', channel])) as [string, number];
        assert.equal(Number(plain), 0);
      }
      const messages = await listen(broker, channel);
      await broker.publish(channel, 'hello');
      assert.equal(await messages.next(), 'hello');
    } finally {
      await broker.close();
    }
  });

  it('keeps latest prices and portfolios on keys of different slots, read without MGET', async () => {
    const broker = await connectRedisClusterBroker(nodes(), fast);
    try {
      const symbols = ['SOL', 'BTC', 'ETH', 'JUP'];
      assert.ok(new Set(symbols.map((s) => calculateSlot(`trading:price:${s}`))).size > 1, 'keys on several slots');
      const prices = createPriceStore(broker);
      for (const [i, symbol] of symbols.entries()) await prices.setPrice(symbol, `${i + 1}.5`);
      assert.deepEqual(
        (await prices.getPrices(['SOL', 'DOGE', 'BTC', 'ETH', 'JUP'])).map((p) => `${p.symbol}=${p.price}`),
        ['SOL=1.5', 'BTC=2.5', 'ETH=3.5', 'JUP=4.5'],
      );
      const publisher = createEventPublisher(broker, { layout: partitionedChannelLayout() });
      const event = await publisher.publishPortfolioUpdate({ userId: 42, balances: [], positions: [], version: 1 });
      assert.deepEqual(JSON.parse((await broker.getLatest('trading:portfolio:42')) ?? 'null'), event);
    } finally {
      await broker.close();
    }
  });

  it('resubscribes every partition of a failed master on its replica, then reports up', async () => {
    const layout = partitionedChannelLayout(16);
    const gateway = await connectRedisClusterBroker(nodes(), fast);
    const publisherBroker = await connectRedisClusterBroker(nodes(), fast);
    try {
      const got = new Set<number>();
      for (let p = 0; p < layout.partitions; p++) {
        await gateway.subscribe(layout.privateChannel('order_filled', p), (raw) => {
          got.add((JSON.parse(raw) as { userId: number }).userId);
        });
      }
      const port = await cluster.masterOfSlot(calculateSlot(layout.privateChannel('order_filled', 0)));
      const down = nextValue<boolean>((cb) => gateway.onStatusChange(cb), { what: 'down' });
      const up = nextValue<boolean>((cb) => gateway.onStatusChange((u) => u && cb(u)), {
        timeoutMs: 30_000,
        what: 'up again',
      });
      const killed = await cluster.killMaster(port);
      assert.equal(await down, false);
      await killed.promoted();
      assert.equal(await up, true);

      // Publishers follow the moved slots too (after their own heal).
      const publisher = createEventPublisher(publisherBroker, { layout });
      await waitUntilUp(publisherBroker);
      for (let userId = 1; userId <= 32; userId++) {
        await publisher.publishOrderFilled({
          userId,
          orderId: userId,
          side: 'sell',
          baseAsset: 'SOL',
          quoteAsset: 'USD',
          executedPrice: '2',
          executedSize: '1',
          fee: '0',
        });
      }
      const deadline = Date.now() + 5000;
      while (got.size < 32 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      assert.equal(got.size, 32, 'an event for every partition arrived after the failover');
      await cluster.restartNode(port);
    } finally {
      await Promise.all([gateway.close(), publisherBroker.close()]);
    }
  });

  it('follows a planned failover: the old master drops the channel, the new one gets it', async () => {
    const broker = await connectRedisClusterBroker(nodes(), fast);
    try {
      const channel = 'trading:events:price:update:{SOL}';
      const messages = await listen(broker, channel);
      const port = await cluster.masterOfSlot(calculateSlot(channel));
      const down = nextValue<boolean>((cb) => broker.onStatusChange(cb), { timeoutMs: 20_000, what: 'down' });
      const up = nextValue<boolean>((cb) => broker.onStatusChange((u) => u && cb(u)), {
        timeoutMs: 20_000,
        what: 'up again',
      });
      const { promoted } = await cluster.switchOver(port);
      assert.equal(await down, false);
      assert.equal(await up, true);
      assert.equal(await shardSubscribers(promoted, channel), 1, 'subscribed at the new master');
      await broker.publish(channel, 'after the switch');
      assert.equal(await messages.next(), 'after the switch');
    } finally {
      await broker.close();
    }
  });

  it('notices a master that stops answering, and moves to its promoted replica', async () => {
    const gateway = await connectRedisClusterBroker(nodes(), fast);
    const publisher = await connectRedisClusterBroker(nodes(), fast);
    let resume = () => Promise.resolve();
    try {
      const channel = 'trading:events:price:update:{SOL}';
      const messages = await listen(gateway, channel);
      const port = await cluster.masterOfSlot(calculateSlot(channel));
      const gatewayDown = nextValue<boolean>((cb) => gateway.onStatusChange(cb), { timeoutMs: 20_000, what: 'down' });
      const publisherDown = nextValue<boolean>((cb) => publisher.onStatusChange(cb), {
        timeoutMs: 20_000,
        what: 'publisher down',
      });
      // SIGSTOP: the master's kernel acknowledges what is sent, nothing answers. Its replica is
      // promoted after the cluster's node timeout; without a command deadline and an idle
      // timeout, publishes and both brokers' "up" outlived that by as long as TCP takes to give up.
      const paused = await cluster.pauseMaster(port);
      resume = () => paused.resume();
      // Ticks keep being published to its slot, so its connection never looks idle: only the
      // broker's own deadline on a command notices that nothing comes back.
      let failure: unknown;
      const giveUp = Date.now() + 15_000;
      while (failure === undefined) {
        assert.ok(Date.now() < giveUp, 'no publish to the stopped master ever failed');
        publisher.publish(channel, 'to the stopped master').catch((err: unknown) => (failure ??= err));
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
      assert.ok(failure instanceof BrokerUnavailableError, (failure as Error).message);
      assert.equal(await publisherDown, false);
      assert.equal(await gatewayDown, false);
      await paused.promoted();
      await Promise.all([waitUntilUp(gateway), waitUntilUp(publisher)]);
      assert.equal(await shardSubscribers(paused.replica, channel), 1, 'subscribed at the promoted replica');
      await publisher.publish(channel, 'after the failover');
      assert.equal(await messages.next(), 'after the failover');
    } finally {
      await Promise.all([gateway.close(), publisher.close()]);
      await resume();
    }
  });

  it('tells a key Redis refuses from trouble with the cluster', async () => {
    const broker = await connectRedisClusterBroker(nodes(), fast);
    const changes: boolean[] = [];
    broker.onStatusChange((up) => changes.push(up));
    try {
      const key = 'refused:{SOL}';
      await onMaster(await cluster.masterOfSlot(calculateSlot(key)), ['HSET', key, 'x', '1']);
      await assert.rejects(broker.setLatestIfNewer(key, '{"version":1}', 1), (err: unknown) => {
        assert.ok(err instanceof BrokerCommandError, String(err));
        assert.equal(err.reply, 'WRONGTYPE');
        return true;
      });
      // No heal was started: a refused command says nothing about the topology.
      await broker.publish('trading:events:price:update:{BTC}', 'still fine');
      assert.deepEqual(changes, []);
      assert.equal(broker.isUp(), true);
    } finally {
      await broker.close();
    }
  });

  it('a subscriber answered MOVED with no node reachable does not end the process, and heals', async () => {
    // A cluster of its own, every node of which this test stops and starts again.
    const own = await RedisCluster.start({ replicasPerMaster: 0 });
    const client = createRedisClusterClient(own.rootNodes.split(','));
    const broker = new RedisClusterBroker({ cluster: client, refreshMaxDelayMs: 200 });
    const rejections: unknown[] = [];
    const record = (reason: unknown) => rejections.push(reason);
    process.on('unhandledRejection', record);
    try {
      await client.connect();
      const channel = 'trading:events:price:update:{SOL}';
      const messages = await listen(broker, channel);
      const ports = await own.masterPorts();
      const down = nextValue<boolean>((cb) => broker.onStatusChange((up) => !up && cb(up)), { what: 'down' });
      await Promise.all(ports.map((port) => own.killNode(port)));
      await down;
      // What node-redis emits when a reconnected subscriber's resubscription is answered MOVED
      // (its node lost the slot meanwhile): its own listener rediscovers without a catch.
      const subscriber = client.slots[calculateSlot(channel)]!.master.pubSub!.client;
      subscriber.emit('__MOVED', subscriber.getPubSubListeners('SHARDED'));
      // Joins the rediscovery under way, if any, and fails as it does: no node answers.
      await assert.rejects(client._slots.rediscover(subscriber));
      await new Promise((resolve) => setImmediate(resolve)); // unhandled rejections are reported by then
      assert.deepEqual(rejections, [], 'no unhandled rejection');
      assert.equal(broker.isUp(), false);

      const up = nextValue<boolean>((cb) => broker.onStatusChange((u) => u && cb(u)), {
        timeoutMs: 30_000,
        what: 'up again',
      });
      await Promise.all(ports.map((port) => own.restartNode(port)));
      assert.equal(await up, true);
      await broker.publish(channel, 'after the restart');
      assert.equal(await messages.next(), 'after the restart');
    } finally {
      process.off('unhandledRejection', record);
      await broker.close();
      await own.stop();
    }
  });

  it('a channel unsubscribed while its shard connection is down is unsubscribed once it is back', async () => {
    const client = createCluster({
      rootNodes: nodes().map((node) => ({ url: `redis://${node}` })),
      // Every reconnection 300 ms after the last: the heal a refused one starts is over before the next.
      defaults: { socket: { reconnectStrategy: () => 300 }, disableOfflineQueue: true },
    });
    const broker = new RedisClusterBroker({ cluster: client, checkIntervalMs: 200, refreshMaxDelayMs: 200 });
    const channel = 'trading:events:order:filled:{7}';
    const port = await cluster.masterOfSlot(calculateSlot(channel));
    // An admin connection opened first: with maxclients at the count of connections, the node
    // refuses every new one, the shard subscriber's reconnection included.
    const admin = createClient({ socket: { host: '127.0.0.1', port } });
    await admin.connect();
    const maxclients = (await admin.configGet('maxclients')).maxclients!;
    try {
      await client.connect();
      const unsubscribe = await broker.subscribe(channel, () => {});
      assert.equal(await shardSubscribers(port, channel), 1);
      const subscriber = client.slots[calculateSlot(channel)]!.master.pubSub!.client;

      const healed = nextValue<boolean>((cb) => broker.onStatusChange((up) => up && cb(up)), { what: 'healed' });
      const unsubscribed = new Promise<void>((resolve) => {
        subscriber.once('reconnecting', () => void unsubscribe().then(resolve));
      });
      const connected = Number(/connected_clients:(\d+)/.exec(await admin.info('clients'))![1]);
      await admin.configSet('maxclients', String(connected - 1));
      await admin.sendCommand(['CLIENT', 'KILL', 'TYPE', 'pubsub']);
      await unsubscribed;
      // The heal that the lost connection started is done, the subscriber still refused.
      await healed;
      assert.equal(subscriber.isReady, false);

      const ready = new Promise((resolve) => subscriber.once('ready', resolve));
      await admin.configSet('maxclients', maxclients);
      // Back, and resubscribed by node-redis, which still listed the channel.
      await ready;
      await waitFor(async () => (await shardSubscribers(port, channel)) === 0, {
        timeoutMs: 10_000,
        what: 'the channel unsubscribed at its master',
      });
    } finally {
      await admin.configSet('maxclients', maxclients);
      admin.destroy();
      await broker.close();
    }
  });

  it('fails to connect with a clear error when no node answers', async () => {
    const port = await freePort();
    await assert.rejects(connectRedisClusterBroker([`127.0.0.1:${port}`], { connectTimeoutMs: 2000 }), (err: Error) => {
      assert.match(err.message, new RegExp(`cannot connect to the Redis Cluster at 127\\.0\\.0\\.1:${port}`));
      return true;
    });
  });

  it('is a RedisClusterBroker handed its own client, which it closes', async () => {
    const client = createRedisClusterClient(nodes());
    const broker = new RedisClusterBroker({ cluster: client });
    await client.connect();
    assert.equal(broker.isUp(), true);
    await broker.close();
    assert.equal(client.isOpen, false);
    assert.equal(broker.isUp(), false);
  });
});

/** Resolves once `broker` reports up (now or later). */
async function waitUntilUp(broker: RedisClusterBroker): Promise<void> {
  if (broker.isUp()) return;
  await nextValue<boolean>((cb) => broker.onStatusChange((u) => u && cb(u)), { timeoutMs: 30_000, what: 'up' });
}
