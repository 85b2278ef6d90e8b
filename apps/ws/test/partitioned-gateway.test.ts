import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MemoryBroker, createEventPublisher, partitionedChannelLayout, type Broker } from '@repo/broker';
import { redisKeys } from '@repo/redis';
import type { PortfolioMessage } from '@repo/protocol';
import { waitFor } from '@repo/test-support';
import { startGateway, StubSessions, type GatewayFixture } from './gateway-fixture.ts';

/**
 * The gateway on the partitioned channel layout (Redis Cluster mode), here over the in-process
 * broker: which partitions it subscribes to as users come and go, and that a socket's private
 * stream is live only once its partition is. The same on a real cluster: redis-cluster.test.ts.
 */

const layout = partitionedChannelLayout(4);

const portfolio = (userId: number, version: number) => ({
  userId,
  balances: [{ asset: 'USD', available: String(1000 + version), locked: '0' }],
  positions: [],
  version,
});

const fill = (userId: number, seq: number) => ({
  userId,
  orderId: seq,
  side: 'buy' as const,
  baseAsset: 'SOL',
  quoteAsset: 'USD',
  executedPrice: '10',
  executedSize: '1',
  fee: '0',
  seq,
});

async function partitioned(broker?: Broker, sessions?: StubSessions): Promise<GatewayFixture> {
  return startGateway({
    channelLayout: layout,
    symbols: ['SOL', 'BTC'],
    ...(broker ? { broker } : {}),
    ...(sessions ? { sessions } : {}),
  });
}

describe('gateway on the partitioned layout', () => {
  it('subscribes to a partition while it has an authenticated socket of one of its users, and only then', async () => {
    const fx = await partitioned();
    const publisher = createEventPublisher(fx.broker, { layout });
    const partitions = () => fx.metric('tradewire_ws_broker_partitions');
    const received = () => fx.metric('tradewire_ws_broker_messages_total', { kind: 'order_filled' });
    try {
      assert.equal(await partitions(), 0, 'nobody authenticated: no private channel');
      const five = await fx.connectAs(5);
      const nine = await fx.connectAs(9); // partition 1 as well
      assert.equal(await partitions(), 1);
      await five.client.request({ type: 'subscribe', channel: 'orders' });
      await nine.client.request({ type: 'subscribe', channel: 'orders' });

      // Users 6 and 7 are in partitions nobody here holds: their events never reach this process.
      for (const userId of [6, 7, 5, 9]) await publisher.publishOrderFilled(fill(userId, 1));
      await five.client.waitFor((m) => m.type === 'order_filled');
      await nine.client.waitFor((m) => m.type === 'order_filled');
      assert.equal(await received(), 2);

      five.client.ws.close();
      await five.client.closed;
      await publisher.publishOrderFilled(fill(9, 2));
      await nine.client.waitFor((m) => m.type === 'order_filled' && m.seq === 2);
      assert.equal(await partitions(), 1, 'user 9 still holds partition 1');

      nine.client.ws.close();
      await nine.client.closed;
      await waitFor(async () => (await partitions()) === 0, { what: 'partition 1 dropped' });
      await publisher.publishOrderFilled(fill(9, 3));
      await publisher.publishPriceUpdate('SOL', '1');
      const watcher = await fx.connect();
      await watcher.request({ type: 'subscribe', channel: 'prices' });
      await publisher.publishPriceUpdate('BTC', '2');
      await watcher.waitFor((m) => m.type === 'price' && m.symbol === 'BTC');
      assert.equal(await received(), 3, 'nothing of partition 1 after its last user left');
    } finally {
      await fx.close();
    }
  });

  it('answers auth_ok only once the partition is subscribed: a portfolio published meanwhile is not lost', async () => {
    // A broker whose subscriptions to private channels wait until the test lets them through.
    let open!: () => void;
    const gate = new Promise<void>((resolve) => (open = resolve));
    let entered!: () => void;
    const subscribing = new Promise<void>((resolve) => (entered = resolve));
    class GatedBroker extends MemoryBroker {
      override async subscribe(...args: Parameters<MemoryBroker['subscribe']>) {
        if (args[0].startsWith('trading:events:portfolio:update:{')) {
          entered();
          await gate;
        }
        return super.subscribe(...args);
      }
    }
    const broker = new GatedBroker();
    const publisher = createEventPublisher(broker, { layout });
    await publisher.publishPortfolioUpdate(portfolio(6, 1));
    const fx = await partitioned(broker);
    try {
      fx.sessions.add('six', 6);
      const client = await fx.connect();
      // Both requests at once, as a client that does not wait for auth_ok would send them.
      const auth = client.request({ type: 'auth', token: 'six' });
      const subscribed = client.request({ type: 'subscribe', channel: 'portfolio' });
      await subscribing;
      // Published while the gateway is subscribing: the live message reaches nobody here.
      await publisher.publishPortfolioUpdate(portfolio(6, 2));
      open();
      assert.equal((await auth).type, 'auth_ok');
      assert.equal((await subscribed).type, 'subscribed');
      // The snapshot was read after the subscription was live, so it is version 2.
      const first = await client.waitFor((m): m is PortfolioMessage => m.type === 'portfolio');
      assert.equal(first.version, 2);
    } finally {
      await fx.close();
      await broker.close();
    }
  });

  it('checks the token again when its partition was new: a session revoked meanwhile is refused', async () => {
    // The first check passes; by the second one the session has been revoked (a logout whose
    // event went to a partition this gateway was not subscribed to yet).
    class RevokedAfterFirstCheck extends StubSessions {
      verifiedTimes = 0;
      override async verify(token: string) {
        this.verifiedTimes += 1;
        return this.verifiedTimes === 1 ? super.verify(token) : null;
      }
    }
    const sessions = new RevokedAfterFirstCheck();
    const fx = await partitioned(undefined, sessions);
    try {
      sessions.add('late', 3);
      const client = await fx.connect();
      const reply = await client.request({ type: 'auth', token: 'late' });
      assert.equal(reply.type === 'error' && reply.code, 'auth_failed');
      assert.equal(sessions.verifiedTimes, 2);
      await waitFor(async () => (await fx.metric('tradewire_ws_broker_partitions')) === 0, {
        what: 'the refused socket to let go of partition 3',
      });
      const denied = await client.request({ type: 'subscribe', channel: 'orders' });
      assert.equal(denied.type === 'error' && denied.code, 'auth_required');
    } finally {
      await fx.close();
    }
  });

  it('ends a session revoked on its user partition, and only on the gateways that hold that user', async () => {
    const fx = await partitioned();
    const publisher = createEventPublisher(fx.broker, { layout });
    try {
      const seven = await fx.connectAs(7);
      await seven.client.request({ type: 'subscribe', channel: 'orders' });
      await publisher.publishSessionRevoked({ sessionId: seven.session.sessionId, userId: 7 });
      const ended = await seven.client.waitFor((m) => m.type === 'error');
      assert.equal(ended.type === 'error' && ended.code, 'session_revoked');
      // The revocation went to trading:events:session:revoked:{3} only.
      assert.equal(await fx.metric('tradewire_ws_broker_messages_total', { kind: 'session_revoked' }), 1);
      await waitFor(async () => (await fx.metric('tradewire_ws_broker_partitions')) === 0, {
        what: 'the revoked socket to let go of partition 3',
      });
      // The design's revocation channel is not listened to in this layout.
      await fx.broker.publish(redisKeys.CHANNELS.sessionRevoked(), JSON.stringify({ sessionId: 'x' }));
      const other = await fx.connectAs(8);
      await publisher.publishSessionRevoked({ sessionId: other.session.sessionId, userId: 8 });
      await other.client.waitFor((m) => m.type === 'error');
      assert.equal(await fx.metric('tradewire_ws_broker_messages_total', { kind: 'session_revoked' }), 2);
    } finally {
      await fx.close();
    }
  });
});
