import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { connectRedisBroker, createEventPublisher, type RedisBroker } from '@repo/broker';
import type { Logger } from '@repo/log';
import { redisKeys } from '@repo/redis';
import { startGateway, StubSessions, type GatewayFixture } from './gateway-fixture.ts';
import { RedisServer, waitFor } from '@repo/test-support';

const C = redisKeys.CHANNELS;
const fastReconnect = { baseDelayMs: 20, maxDelayMs: 200 };
const now = () => new Date().toISOString();
const filled = (userId: number, orderId: number) => ({
  userId,
  orderId,
  side: 'buy' as const,
  baseAsset: 'SOL',
  quoteAsset: 'USD',
  executedPrice: '231.45',
  executedSize: '10',
  fee: '0.1',
  timestamp: now(),
});

async function health(fx: GatewayFixture): Promise<{ status: string; broker: string; connections: number }> {
  const res = await fetch(fx.url.replace('ws://', 'http://') + '/health');
  return (await res.json()) as { status: string; broker: string; connections: number };
}

describe('gateway on Redis', () => {
  let redis: RedisServer;
  let publisherBroker: RedisBroker;
  before(async () => {
    redis = await RedisServer.start();
    publisherBroker = await connectRedisBroker(redis.url, fastReconnect);
  });
  after(async () => {
    await publisherBroker.close();
    await redis.stop();
  });

  it('two gateway nodes on one Redis: every client gets each event exactly once', async () => {
    const sessions = new StubSessions();
    const nodes = [
      await startGateway({ broker: await connectRedisBroker(redis.url, fastReconnect), sessions }),
      await startGateway({ broker: await connectRedisBroker(redis.url, fastReconnect), sessions }),
    ];
    try {
      const userOneA = (await nodes[0]!.connectAs(1)).client;
      const userOneB = (await nodes[1]!.connectAs(1)).client;
      const userTwoB = (await nodes[1]!.connectAs(2)).client;
      const users = [userOneA, userOneB, userTwoB];
      for (const client of users) await client.request({ type: 'subscribe', channel: 'orders' });
      const pricesA = await nodes[0]!.connect();
      const pricesB = await nodes[1]!.connect();
      for (const client of [pricesA, pricesB]) await client.request({ type: 'subscribe', channel: 'prices' });

      const publisher = createEventPublisher(publisherBroker);
      const ticks: string[] = [];
      for (let i = 1; i <= 30; i += 1) {
        await publisher.publishOrderFilled(filled(i % 2 === 0 ? 2 : 1, i));
        ticks.push(String(i));
        await publisher.publishPriceUpdate('SOL', String(i));
      }
      const orderIds = (client: (typeof users)[number]) => client.ofType('order_filled').map((m) => m.orderId);
      const odd = Array.from({ length: 15 }, (_, i) => 2 * i + 1);
      const even = odd.map((n) => n + 1);
      await userOneA.waitFor((m) => m.type === 'order_filled' && m.orderId === 29);
      await userOneB.waitFor((m) => m.type === 'order_filled' && m.orderId === 29);
      await userTwoB.waitFor((m) => m.type === 'order_filled' && m.orderId === 30);
      for (const client of [pricesA, pricesB]) await client.waitFor((m) => m.type === 'price' && m.price === '30');
      await Promise.all([...users, pricesA, pricesB].map((c) => c.barrier()));
      assert.deepEqual(orderIds(userOneA), odd);
      assert.deepEqual(orderIds(userOneB), odd);
      assert.deepEqual(orderIds(userTwoB), even);
      for (const client of [pricesA, pricesB]) {
        assert.deepEqual(
          client.ofType('price').map((m) => m.price),
          ticks,
        );
      }
    } finally {
      for (const node of nodes) await node.close();
      for (const node of nodes) await node.broker.close();
    }
  });

  it('drops malformed events from Redis, counts them, logs one warning per interval, keeps delivering', async () => {
    const warnings: unknown[] = [];
    const logger = {
      info() {},
      debug() {},
      error() {},
      warn(...args: unknown[]) {
        warnings.push(args);
      },
      child() {
        return logger;
      },
    } as unknown as Logger;
    const fx = await startGateway({ broker: await connectRedisBroker(redis.url, fastReconnect), logger });
    try {
      const { client } = await fx.connectAs(5);
      for (const channel of ['prices', 'orders', 'portfolio']) await client.request({ type: 'subscribe', channel });
      client.skipReceived();
      const malformed: [string, string][] = [
        [C.priceUpdate(), 'not json'],
        [C.priceUpdate(), 'null'],
        [C.priceUpdate(), '[]'],
        [C.priceUpdate(), JSON.stringify({ symbol: 'SOL' })],
        [C.priceUpdate(), JSON.stringify({ symbol: 'sol!', price: '1', timestamp: now() })],
        [C.priceUpdate(), JSON.stringify({ symbol: 'SOL', price: '-1', timestamp: now() })],
        [C.priceUpdate(), JSON.stringify({ symbol: 'SOL', price: '1e400', timestamp: now() })],
        [C.orderFilled(), JSON.stringify({ ...filled(5, 1), userId: '5' })],
        [C.orderFilled(), JSON.stringify({ ...filled(5, 1), userId: 0 })],
        [C.orderFilled(), JSON.stringify({ ...filled(5, 1), fee: undefined })],
        [C.orderFilled(), '{"userId":5,"__proto__":{"isAdmin":true}}'],
        [C.orderRejected(), JSON.stringify({ ...filled(5, 2), reason: '' })],
        [C.portfolioUpdate(), JSON.stringify({ userId: 5, balances: 'lots', positions: [], timestamp: now() })],
        [C.portfolioUpdate(), JSON.stringify({ userId: 5, balances: [], positions: [], timestamp: 'yesterday' })],
      ];
      for (const [channel, raw] of malformed) await publisherBroker.publish(channel, raw);
      // A valid event with an unknown field: delivered, without the field.
      await publisherBroker.publish(C.orderFilled(), JSON.stringify({ ...filled(5, 3), smuggled: '<script>' }));
      await publisherBroker.publish(C.priceUpdate(), JSON.stringify({ symbol: 'SOL', price: '2', timestamp: now() }));
      const order = await client.next();
      assert.equal(order.type, 'order_filled');
      assert.equal('smuggled' in order, false);
      const price = await client.next();
      assert.deepEqual([price.type, price.type === 'price' && price.price], ['price', '2']);
      await client.barrier();
      assert.equal(
        client.received.filter((m) => ['price', 'order_filled', 'order_rejected', 'portfolio'].includes(m.type)).length,
        2,
      );
      assert.equal(await fx.metric('tradewire_ws_events_dropped_total', { reason: 'malformed' }), malformed.length);
      assert.equal(warnings.length, 1, 'one warning line for the burst');
      assert.doesNotMatch(JSON.stringify(warnings), /isAdmin/);
    } finally {
      await fx.close();
      await fx.broker.close();
    }
  });
});

describe('gateway when Redis dies and comes back', () => {
  let redis: RedisServer;
  before(async () => {
    redis = await RedisServer.start();
  });
  after(() => redis.stop());

  it('reports degraded while Redis is down and resumes live delivery without clients reconnecting', async () => {
    const fx = await startGateway({ broker: await connectRedisBroker(redis.url, fastReconnect) });
    const publisherBroker = await connectRedisBroker(redis.url, fastReconnect);
    const publisher = createEventPublisher(publisherBroker);
    try {
      const { client } = await fx.connectAs(9);
      await client.request({ type: 'subscribe', channel: 'prices' });
      await client.request({ type: 'subscribe', channel: 'orders' });
      await publisher.publishPriceUpdate('SOL', '1');
      await client.waitFor((m) => m.type === 'price' && m.price === '1');
      assert.deepEqual(await health(fx), { status: 'ok', broker: 'up', connections: 1 });

      await redis.kill();
      await waitFor(async () => (await health(fx)).status === 'degraded', { what: 'degraded health' });
      assert.deepEqual(await health(fx), { status: 'degraded', broker: 'down', connections: 1 });
      await client.barrier(); // the gateway itself still answers

      await redis.restart();
      await waitFor(async () => (await health(fx)).status === 'ok', { timeoutMs: 10_000, what: 'health ok again' });
      // Resubscription may lag the publisher's reconnect by a moment: publish until one arrives.
      let tick = 1;
      await waitFor(
        async () => {
          await publisher.publishPriceUpdate('SOL', String((tick += 1))).catch(() => {});
          return client.received.some((m) => m.type === 'price' && m.price !== '1');
        },
        { timeoutMs: 10_000, intervalMs: 50, what: 'a price after the restart' },
      );
      let orderId = 0;
      await waitFor(
        async () => {
          await publisher.publishOrderFilled(filled(9, (orderId += 1))).catch(() => {});
          return client.ofType('order_filled').length > 0;
        },
        { timeoutMs: 10_000, intervalMs: 50, what: 'an order event after the restart' },
      );
      await client.barrier();
      const ids = client.ofType('order_filled').map((m) => m.orderId);
      assert.equal(new Set(ids).size, ids.length, 'no duplicates');
      assert.equal(client.ws.readyState, client.ws.OPEN, 'the client never reconnected');
      assert.equal(fx.gateway.connectionCount(), 1);
    } finally {
      await fx.close();
      await fx.broker.close();
      await publisherBroker.close();
    }
  });
});
