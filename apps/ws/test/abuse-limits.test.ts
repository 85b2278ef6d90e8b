import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { WebSocket, type ClientOptions } from 'ws';
import { addressKey, AddressRateLimiter } from '../src/address-rate-limiter.ts';
import { defaultLimits } from '../src/index.ts';
import { startGateway } from './gateway-fixture.ts';
import { TestClient, waitFor } from '@repo/test-support';

/** Opens a socket and reports how the upgrade ended: 101, or the refusal's status and Retry-After. */
function attempt(
  url: string,
  options: ClientOptions = {},
): Promise<{ status: number; retryAfter?: string; ws?: WebSocket }> {
  const ws = new WebSocket(url, options);
  ws.on('error', () => {});
  return new Promise((resolve) => {
    ws.once('open', () => resolve({ status: 101, ws }));
    ws.once('unexpected-response', (req, res) => {
      resolve({ status: res.statusCode ?? 0, retryAfter: res.headers['retry-after'] });
      res.resume();
      req.destroy();
    });
  });
}

describe('per-address upgrade limit', () => {
  it('has the documented defaults', () => {
    const limits = defaultLimits();
    assert.equal(limits.upgradesPerAddress, 200);
    assert.equal(limits.upgradeWindowMs, 10_000);
    assert.equal(limits.maxSubscriptions, 3);
  });

  it('answers attempts past the limit with 429 and Retry-After; other addresses are unaffected', async () => {
    const fx = await startGateway({
      limits: { upgradesPerAddress: 5, upgradeWindowMs: 60_000 },
      upgradeLimitExempt: [],
    });
    const open: WebSocket[] = [];
    try {
      for (let i = 0; i < 5; i++) {
        const result = await attempt(fx.url);
        assert.equal(result.status, 101, `attempt ${i + 1}`);
        open.push(result.ws!);
        // Closing does not give the attempt back: the limit counts attempts, not open sockets.
        if (i % 2 === 0) result.ws!.close();
      }
      const refused = await attempt(fx.url);
      assert.equal(refused.status, 429);
      assert.ok(
        Number(refused.retryAfter) >= 1 && Number(refused.retryAfter) <= 60,
        `Retry-After ${refused.retryAfter}`,
      );
      // Another address (127.0.0.2 is loopback on Linux) has its own budget.
      const other = await attempt(fx.url, { localAddress: '127.0.0.2' });
      assert.equal(other.status, 101);
      open.push(other.ws!);
      // Sockets already open keep working.
      const last = open[1]!;
      const pong = new Promise<string>((resolve) => last.once('message', (data: Buffer) => resolve(data.toString())));
      last.send(JSON.stringify({ type: 'ping', id: 'p' }));
      assert.deepEqual(JSON.parse(await pong), { type: 'pong', id: 'p' });
      assert.equal(await fx.metric('tradewire_ws_connections'), fx.gateway.connectionCount());
    } finally {
      for (const ws of open) ws.terminate();
      await fx.close();
    }
  });

  it('lets a new window start afresh', async () => {
    const fx = await startGateway({ limits: { upgradesPerAddress: 2, upgradeWindowMs: 300 }, upgradeLimitExempt: [] });
    try {
      assert.equal((await fx.connect()) instanceof TestClient, true);
      await fx.connect();
      assert.equal((await attempt(fx.url)).status, 429);
      // The window is 300 ms; each refused attempt is cheap, so poll until it has passed.
      await waitFor(
        async () => {
          const result = await attempt(fx.url);
          result.ws?.terminate();
          return result.status === 101;
        },
        { timeoutMs: 3000, intervalMs: 50, what: 'an upgrade accepted in the next window' },
      );
    } finally {
      await fx.close();
    }
  });

  it('exempts loopback by default (a local reverse proxy speaks for many clients)', async () => {
    const fx = await startGateway({ limits: { upgradesPerAddress: 2 } });
    try {
      for (let i = 0; i < 5; i++) await fx.connect();
      assert.equal(fx.gateway.connectionCount(), 5);
    } finally {
      await fx.close();
    }
  });

  it('counts IPv4-mapped addresses as IPv4 and IPv6 addresses per /64, and bounds its table', () => {
    assert.equal(addressKey('::ffff:10.1.2.3'), '10.1.2.3');
    assert.equal(addressKey('10.1.2.3'), '10.1.2.3');
    assert.equal(addressKey('2001:db8:1:2::1'), addressKey('2001:0db8:0001:0002:ffff:eeee:dddd:cccc'));
    assert.notEqual(addressKey('2001:db8:1:2::1'), addressKey('2001:db8:1:3::1'));
    const limiter = new AddressRateLimiter({ limit: 1, windowMs: 1000, maxAddresses: 2 });
    assert.equal(limiter.take('2001:db8:1:2::1', 0), true);
    assert.equal(limiter.take('2001:db8:1:2::99', 1), false, 'same /64');
    assert.equal(limiter.take('10.0.0.2', 2), true);
    // The table is full: a third address passes uncounted rather than growing it.
    assert.equal(limiter.take('10.0.0.3', 3), true);
    assert.equal(limiter.take('10.0.0.3', 4), true);
    assert.equal(limiter.take('10.0.0.2', 5), false);
    // A new window forgets everything.
    assert.equal(limiter.take('10.0.0.2', 1000), true);
  });
});

describe('subscriptions per socket', () => {
  it('answers too_many_subscriptions past maxSubscriptions; re-subscribing and unsubscribing work', async () => {
    const fx = await startGateway({ limits: { maxSubscriptions: 2 } });
    try {
      const { client } = await fx.connectAs(7);
      assert.equal((await client.request({ type: 'subscribe', channel: 'prices' })).type, 'subscribed');
      assert.equal((await client.request({ type: 'subscribe', channel: 'orders' })).type, 'subscribed');
      const refused = await client.request({ type: 'subscribe', channel: 'portfolio' });
      assert.equal(refused.type, 'error');
      assert.equal((refused as { code: string }).code, 'too_many_subscriptions');
      // Already subscribed: not a new subscription, so not refused.
      assert.equal((await client.request({ type: 'subscribe', channel: 'orders' })).type, 'subscribed');
      assert.equal((await client.request({ type: 'unsubscribe', channel: 'prices' })).type, 'unsubscribed');
      assert.equal((await client.request({ type: 'subscribe', channel: 'portfolio' })).type, 'subscribed');
      assert.equal(await fx.metric('tradewire_ws_client_errors_total', { code: 'too_many_subscriptions' }), 1);
    } finally {
      await fx.close();
    }
  });
});
