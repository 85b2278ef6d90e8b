import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createEventPublisher, type EventPublisher } from '@repo/broker';
import { redisKeys } from '@repo/redis';
import { startGateway, type GatewayFixture } from './gateway-fixture.ts';
import { GatedHistory } from './memory-order-history.ts';
import { waitFor } from '@repo/test-support';

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

const revoke = (fx: GatewayFixture, sessionId: unknown) =>
  fx.broker.publish(redisKeys.CHANNELS.sessionRevoked(), JSON.stringify({ sessionId }));

describe('session revocation and expiry', () => {
  let fx: GatewayFixture;
  let publisher: EventPublisher;
  before(async () => {
    fx = await startGateway();
    publisher = createEventPublisher(fx.broker);
  });
  after(() => fx.close());

  it('on logout, tells each socket of the session session_revoked, ends its private events; prices stay', async () => {
    const first = await fx.connectAs(10);
    // A second socket on the same session, and one of the same user on another session.
    const sameSession = await fx.connect();
    await sameSession.request({ type: 'auth', token: first.token });
    const otherSession = await fx.connectAs(10);
    for (const client of [first.client, sameSession, otherSession.client]) {
      await client.request({ type: 'subscribe', channel: 'orders' });
      await client.request({ type: 'subscribe', channel: 'prices' });
      client.skipReceived();
    }
    const started = Date.now();
    await revoke(fx, first.session.sessionId);
    for (const client of [first.client, sameSession]) {
      const message = await client.next(3000);
      assert.equal(message.type === 'error' && message.code, 'session_revoked');
    }
    // Pushed, not found by the once-a-minute re-check; the slack is for a loaded machine.
    assert.ok(Date.now() - started < 3000);
    await publisher.publishOrderFilled(filled(10, 1));
    await publisher.publishPriceUpdate('SOL', '5');
    for (const client of [first.client, sameSession]) {
      await client.waitFor((m) => m.type === 'price' && m.price === '5');
      assert.equal(client.ofType('order_filled').length, 0);
      const retry = await client.request({ type: 'subscribe', channel: 'orders' });
      assert.equal(retry.type === 'error' && retry.code, 'auth_required');
    }
    await otherSession.client.waitFor((m) => m.type === 'order_filled');
    // The revoked token cannot authenticate again, even while the verifier still knows it.
    const again = await first.client.request({ type: 'auth', token: first.token });
    assert.equal(again.type === 'error' && again.code, 'auth_failed');
  });

  it('refuses an auth whose verification was in flight when the revocation arrived', async () => {
    const token = 'tok-racing';
    const session = fx.sessions.add(token, 20);
    const client = await fx.connect();
    fx.sessions.hold();
    const reply = client.request({ type: 'auth', token });
    await waitFor(() => fx.sessions.waiting === 1, { what: 'verification in flight' });
    await revoke(fx, session.sessionId);
    fx.sessions.release();
    const answer = await reply;
    assert.equal(answer.type === 'error' && answer.code, 'auth_failed');
  });

  it('answers auth_required to an orders subscription whose history read was in flight at the logout', async () => {
    const history = new GatedHistory();
    const withHistory = await startGateway({ history });
    try {
      const { client, session } = await withHistory.connectAs(21);
      history.hold();
      const reply = client.request({ type: 'subscribe', channel: 'orders', since: 0 });
      await history.untilReads(1);
      await revoke(withHistory, session.sessionId);
      await client.waitFor((m) => m.type === 'error' && m.code === 'session_revoked');
      history.release();
      assert.deepEqual(await reply, {
        type: 'error',
        code: 'auth_required',
        message: 'authenticate before subscribing to orders',
        id: 'r2',
      });
      assert.equal(await withHistory.metric('tradewire_ws_subscriptions', { channel: 'orders' }), 0);
    } finally {
      await withHistory.close();
    }
  });

  it('drops malformed revocation messages and counts them', async () => {
    const before = await fx.metric('tradewire_ws_events_dropped_total', { reason: 'malformed' });
    const { client } = await fx.connectAs(30);
    await client.request({ type: 'subscribe', channel: 'orders' });
    await fx.broker.publish(redisKeys.CHANNELS.sessionRevoked(), 'not json');
    await revoke(fx, 42);
    await revoke(fx, '');
    await publisher.publishOrderFilled(filled(30, 3));
    await client.waitFor((m) => m.type === 'order_filled');
    assert.equal((await fx.metric('tradewire_ws_events_dropped_total', { reason: 'malformed' })) - before, 3);
  });

  it('at expiresAt, tells the socket session_expired and stops its private events', async () => {
    const { client } = await fx.connectAs(40, { expiresAt: new Date(Date.now() + 1000) });
    await client.request({ type: 'subscribe', channel: 'orders' });
    await client.request({ type: 'subscribe', channel: 'portfolio' });
    await client.waitFor((m) => m.type === 'error' && m.code === 'session_expired', 5000, 'session_expired');
    await publisher.publishOrderFilled(filled(40, 4));
    await client.barrier();
    assert.equal(client.ofType('order_filled').length, 0);
    assert.equal(await fx.metric('tradewire_ws_subscriptions', { channel: 'portfolio' }), 0);
  });
});
