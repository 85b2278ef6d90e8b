import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { connectRedisBroker, createEventPublisher, EVENT_CHANNELS, RedisBroker } from '@repo/broker';
import { MAX_EVENT_LENGTH } from '@repo/events';
import { createRedisClient } from '@repo/redis';
import { defaultLimits } from '../src/index.ts';
import { startGateway } from './gateway-fixture.ts';
import { RedisServer, TcpProxy, waitFor } from '@repo/test-support';

const fastReconnect = { baseDelayMs: 20, maxDelayMs: 200 };
const filled = (userId: number, orderId: number) => ({
  userId,
  orderId,
  side: 'buy' as const,
  baseAsset: 'SOL',
  quoteAsset: 'USD',
  executedPrice: '10',
  executedSize: '1',
  fee: '0',
});

/**
 * The revocations a gateway never heard: a logout published while its subscriber was
 * reconnecting. The gateway re-checks its open sessions after every broker recovery (private
 * events wait for that check) and periodically. The same attack against the launcher's
 * processes, with a real logout, is apps/server/test/session-recheck.e2e.test.ts.
 */
describe('session re-check', () => {
  it('has the documented default interval', () => {
    assert.equal(defaultLimits().sessionRecheckIntervalMs, 60_000);
  });

  describe('after Redis comes back', () => {
    let redis: RedisServer;
    before(async () => {
      redis = await RedisServer.start();
    });
    after(() => redis.stop());

    it('ends sessions revoked meanwhile before any private event goes out; others get theirs', async () => {
      const fx = await startGateway({ broker: await connectRedisBroker(redis.url, fastReconnect) });
      const publisherBroker = await connectRedisBroker(redis.url, fastReconnect);
      const publisher = createEventPublisher(publisherBroker);
      try {
        const revoked = await fx.connectAs(31);
        const kept = await fx.connectAs(32);
        for (const { client } of [revoked, kept]) {
          await client.request({ type: 'subscribe', channel: 'orders' });
          await client.request({ type: 'subscribe', channel: 'prices' });
          client.skipReceived();
        }
        await redis.kill();
        await waitFor(() => !fx.broker.isUp(), { what: 'the gateway to see Redis down' });
        // The logout happens while nobody is listening: only the store knows.
        fx.sessions.revoked.add(revoked.session.sessionId);
        fx.sessions.holdChecks();
        await redis.restart();
        await waitFor(() => fx.sessions.checks.length === 1, { timeoutMs: 10_000, what: 'the re-check to start' });
        assert.deepEqual(
          [...fx.sessions.checks[0]!].sort(),
          [revoked.session.sessionId, kept.session.sessionId].sort(),
          'every open session, in one call',
        );
        // Live private events that arrive while the check runs wait for it; prices do not.
        await waitFor(
          async () => {
            await publisher.publishPriceUpdate('SOL', '7').catch(() => {});
            return kept.client.received.some((m) => m.type === 'price' && m.price === '7');
          },
          { timeoutMs: 10_000, intervalMs: 50, what: 'the gateway to be subscribed again' },
        );
        await publisher.publishOrderFilled(filled(31, 1));
        await publisher.publishOrderFilled(filled(32, 2));
        await publisher.publishPriceUpdate('SOL', '8');
        await kept.client.waitFor((m) => m.type === 'price' && m.price === '8');
        await revoked.client.waitFor((m) => m.type === 'price' && m.price === '8');
        assert.equal(kept.client.ofType('order_filled').length, 0, 'held while the check runs');

        fx.sessions.releaseChecks();
        const ended = await revoked.client.waitFor((m) => m.type === 'error');
        assert.equal(ended.type === 'error' && ended.code, 'session_revoked');
        await kept.client.waitFor((m) => m.type === 'order_filled' && m.orderId === 2);
        await revoked.client.barrier();
        assert.equal(revoked.client.ofType('order_filled').length, 0, 'no private event after the logout');
        const again = await revoked.client.request({ type: 'subscribe', channel: 'orders' });
        assert.equal(again.type === 'error' && again.code, 'auth_required');
        const reauth = await revoked.client.request({ type: 'auth', token: revoked.token });
        assert.equal(reauth.type === 'error' && reauth.code, 'auth_failed', 'the session cannot come back');
      } finally {
        fx.sessions.releaseChecks();
        await fx.close();
        await fx.broker.close();
        await publisherBroker.close();
      }
    });
    it('a long outage while events still arrive delays private events by a check, not for all of it', async () => {
      // The broker is down (its command connection is cut) while its subscriber still hears
      // events, as with one unreachable shard of a Redis Cluster.
      const proxy = await TcpProxy.start({ port: Number(new URL(redis.url).port) });
      const publisherClient = createRedisClient(`redis://127.0.0.1:${proxy.port}`, fastReconnect);
      const subscriberClient = createRedisClient(redis.url, fastReconnect);
      const broker = new RedisBroker({ publisher: publisherClient, subscriber: subscriberClient });
      await Promise.all([publisherClient.connect(), subscriberClient.connect()]);
      const fx = await startGateway({ broker, limits: { authTimeoutMs: 300 } });
      const publisherBroker = await connectRedisBroker(redis.url, fastReconnect);
      const publisher = createEventPublisher(publisherBroker);
      try {
        const revoked = await fx.connectAs(51);
        const kept = await fx.connectAs(52);
        for (const { client } of [revoked, kept]) await client.request({ type: 'subscribe', channel: 'orders' });
        proxy.cut();
        await waitFor(() => !fx.broker.isUp(), { what: 'the gateway to see the broker down' });
        fx.sessions.revoked.add(revoked.session.sessionId);
        fx.sessions.holdChecks();
        await publisher.publishOrderFilled(filled(51, 1));
        await publisher.publishOrderFilled(filled(52, 2));
        // An event longer than any event may be is refused at once, not held (the hold's memory).
        const dropped = () => fx.metric('tradewire_ws_events_dropped_total', { reason: 'malformed' });
        const droppedBefore = await dropped();
        await publisherBroker.publish(EVENT_CHANNELS.order_filled, 'x'.repeat(MAX_EVENT_LENGTH + 1));
        await waitFor(async () => (await dropped()) === droppedBefore + 1, { what: 'the oversized event refused' });
        await waitFor(() => fx.sessions.checks.length > 0, { what: 'a check during the outage' });
        assert.equal(kept.client.ofType('order_filled').length, 0, 'held while the check runs');
        fx.sessions.releaseChecks();

        // Still down: the held events go out after the check, to the sessions it kept.
        await kept.client.waitFor((m) => m.type === 'order_filled' && m.orderId === 2, 5000);
        const ended = await revoked.client.waitFor((m) => m.type === 'error', 5000);
        assert.equal(ended.type === 'error' && ended.code, 'session_revoked');
        assert.equal(fx.broker.isUp(), false, 'delivered during the outage');
        await revoked.client.barrier();
        assert.equal(revoked.client.ofType('order_filled').length, 0, 'no private event after the logout');
      } finally {
        fx.sessions.releaseChecks();
        proxy.restore();
        await fx.close();
        await fx.broker.close();
        await publisherBroker.close();
        await proxy.stop();
      }
    });
  });

  it('re-checks every sessionRecheckIntervalMs: revoked and expired end, a failed check ends nothing', async () => {
    const fx = await startGateway({ limits: { sessionRecheckIntervalMs: 50 } });
    try {
      const revoked = await fx.connectAs(41);
      const expired = await fx.connectAs(42);
      const kept = await fx.connectAs(43);
      fx.sessions.fail = true;
      fx.sessions.revoked.add(revoked.session.sessionId);
      fx.sessions.tokens.delete(expired.token);
      const failedChecks = fx.sessions.checks.length;
      await waitFor(() => fx.sessions.checks.length >= failedChecks + 2, { what: 'two failing checks' });
      await revoked.client.barrier();
      assert.equal(revoked.client.ofType('error').length, 0, 'a failed check ends nothing');

      fx.sessions.fail = false;
      const first = await revoked.client.waitFor((m) => m.type === 'error', 3000);
      assert.equal(first.type === 'error' && first.code, 'session_revoked');
      const second = await expired.client.waitFor((m) => m.type === 'error', 3000);
      assert.equal(second.type === 'error' && second.code, 'session_expired');
      await kept.client.barrier();
      assert.equal(kept.client.ofType('error').length, 0);
      assert.equal((await kept.client.request({ type: 'subscribe', channel: 'orders' })).type, 'subscribed');
    } finally {
      await fx.close();
    }
  });
});
