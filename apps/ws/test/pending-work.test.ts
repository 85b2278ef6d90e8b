import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { defaultLimits } from '../src/index.ts';
import { startGateway } from './gateway-fixture.ts';
import { waitFor } from '@repo/test-support';

/**
 * How much work a slow session store can make the gateway hold: each socket's queue of
 * unanswered requests is capped, and so are the token verifications in flight and waiting for
 * the whole process. The flood against a locked PostgreSQL is in
 * apps/server/test/timing/auth-flood.test.ts.
 */
describe('pending work under a slow session store', () => {
  it('has the documented defaults', () => {
    const limits = defaultLimits();
    assert.equal(limits.maxQueuedRequests, 8);
    assert.equal(limits.authConcurrency, 32);
    assert.equal(limits.maxAuthWaiting, 256);
  });

  it('answers requests past 8 unanswered with rate_limited at once; closes one that keeps on with 1008', async () => {
    const fx = await startGateway();
    try {
      const client = await fx.connect();
      fx.sessions.hold();
      // Within the message rate (50/s), but the store does not answer.
      for (let i = 0; i < 12; i += 1) client.send({ type: 'auth', token: `tok-${i}`, id: i });
      const refused = await client.waitFor((m) => m.type === 'error' && m.id === 11);
      assert.equal(refused.type === 'error' && refused.code, 'rate_limited');
      assert.deepEqual(
        client.ofType('error').map((m) => [m.code, m.id]),
        [8, 9, 10, 11].map((id) => ['rate_limited', id]),
        'the first 8 wait, the rest are refused',
      );
      assert.equal(await fx.metric('tradewire_ws_requests_pending'), 8);
      assert.equal(await fx.metric('tradewire_ws_auth_in_flight'), 1, 'one request at a time per socket');

      // The store answers: the 8 are answered in order, and the socket is served again.
      fx.sessions.release();
      for (let i = 0; i < 8; i += 1) {
        const answer = await client.waitFor((m) => m.type === 'error' && m.id === i);
        assert.equal(answer.type === 'error' && answer.code, 'auth_failed');
      }
      assert.equal((await client.request({ type: 'ping' })).type, 'pong');
      assert.equal(await fx.metric('tradewire_ws_requests_pending'), 0);

      // A socket that keeps pushing while its queue is full is a flooder: closed like one.
      fx.sessions.hold();
      const flooder = await fx.connect();
      // Its first verification reaches the store before the flood: sent in the same burst, the
      // socket could close before its slot was granted, and a verification whose socket has
      // closed is never started (so nothing would remain in progress below).
      flooder.send({ type: 'auth', token: 'tok-0', id: 0 });
      await waitFor(() => fx.sessions.waiting === 1, { what: "the flooder's first verification at the store" });
      for (let i = 1; i < 8 + 51; i += 1) flooder.send({ type: 'auth', token: `tok-${i}`, id: i });
      assert.equal((await flooder.closed).code, 1008);
      assert.equal(flooder.ofType('error').filter((m) => m.code === 'rate_limited').length, 50);
      await waitFor(async () => (await fx.metric('tradewire_ws_requests_pending')) === 1, {
        what: 'the closed socket to let go of its queue (its auth in progress remains)',
      });
      fx.sessions.release();
      await waitFor(async () => (await fx.metric('tradewire_ws_requests_pending')) === 0, {
        what: 'nothing pending once the store answered',
      });
    } finally {
      fx.sessions.release();
      await fx.close();
    }
  });

  it('keeps authConcurrency verifications in flight and maxAuthWaiting waiting; refuses the rest at once', async () => {
    const fx = await startGateway({ limits: { authConcurrency: 2, maxAuthWaiting: 3 } });
    try {
      const token = 'tok-good';
      fx.sessions.add(token, 42);
      const clients = await Promise.all(Array.from({ length: 6 }, () => fx.connect()));
      fx.sessions.hold();
      const answers = clients.slice(0, 5).map((client) => client.request({ type: 'auth', token }));
      await waitFor(async () => (await fx.metric('tradewire_ws_auth_waiting')) === 3, { what: '3 waiting' });
      assert.equal(fx.sessions.waiting, 2, 'the store sees 2 verifications');
      assert.equal(await fx.metric('tradewire_ws_auth_in_flight'), 2);
      const sixth = await clients[5]!.request({ type: 'auth', token });
      assert.equal(sixth.type === 'error' && sixth.code, 'rate_limited', 'refused at once, not queued');

      fx.sessions.release();
      for (const answer of await Promise.all(answers)) assert.equal(answer.type, 'auth_ok');
      assert.equal(await fx.metric('tradewire_ws_auth_in_flight'), 0);
      assert.equal(await fx.metric('tradewire_ws_auth_waiting'), 0);
      // Refused, not broken: the same socket authenticates once there is room.
      assert.equal((await clients[5]!.request({ type: 'auth', token })).type, 'auth_ok');
    } finally {
      fx.sessions.release();
      await fx.close();
    }
  });

  it('holds a slot until the store answers, also after the client was told the check timed out', async () => {
    const fx = await startGateway({ limits: { authConcurrency: 1, maxAuthWaiting: 1, authTimeoutMs: 200 } });
    try {
      const [first, second] = await Promise.all([fx.connect(), fx.connect()]);
      fx.sessions.hold();
      const timedOut = await first.request({ type: 'auth', token: 'tok-slow' });
      assert.equal(timedOut.type === 'error' && timedOut.code, 'internal_error');
      // The query is still running: its slot is not free, so the next one waits, then times out too.
      assert.equal(fx.sessions.waiting, 1);
      assert.equal(await fx.metric('tradewire_ws_auth_in_flight'), 1);
      const waited = await second.request({ type: 'auth', token: 'tok-slow' });
      assert.equal(waited.type === 'error' && waited.code, 'internal_error');
      assert.equal(fx.sessions.waiting, 1, 'no second query was started');
      fx.sessions.release();
      await waitFor(async () => (await fx.metric('tradewire_ws_auth_in_flight')) === 0, { what: 'slot freed' });
      const answer = await second.request({ type: 'auth', token: 'tok-slow' });
      assert.equal(answer.type === 'error' && answer.code, 'auth_failed');
    } finally {
      fx.sessions.release();
      await fx.close();
    }
  });

  it('does not start a waiting verification whose socket closed meanwhile', async () => {
    const fx = await startGateway({ limits: { authConcurrency: 1 } });
    try {
      const [first, second] = await Promise.all([fx.connect(), fx.connect()]);
      fx.sessions.hold();
      const pending = first.request({ type: 'auth', token: 'tok-a' });
      await waitFor(() => fx.sessions.waiting === 1, { what: 'first verification in flight' });
      second.send({ type: 'auth', token: 'tok-b' });
      await waitFor(async () => (await fx.metric('tradewire_ws_auth_waiting')) === 1, { what: 'second waiting' });
      await second.close();
      await waitFor(() => fx.gateway.connectionCount() === 1, { what: 'the close to reach the gateway' });
      fx.sessions.release();
      await pending;
      await waitFor(async () => (await fx.metric('tradewire_ws_auth_in_flight')) === 0, {
        what: "the closed socket's turn to be skipped",
      });
      assert.equal(fx.sessions.verifications, 1, 'no query for a socket that is gone');
    } finally {
      fx.sessions.release();
      await fx.close();
    }
  });
});
