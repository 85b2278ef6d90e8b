import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { WebSocket, type ClientOptions } from 'ws';
import { addressKey } from '@repo/http-access';
import { AddressRateLimiter } from '../src/address-rate-limiter.ts';
import { defaultLimits } from '../src/index.ts';
import { startGateway } from './gateway-fixture.ts';
import { TestClient, waitFor } from '@repo/test-support';

/** Opens a socket and reports how the upgrade ended: 101, or the refusal's status and Retry-After. */
function attempt(
  url: string,
  options: ClientOptions = {},
): Promise<{ status: number; retryAfter?: string; body?: string; ws?: WebSocket }> {
  const ws = new WebSocket(url, options);
  ws.on('error', () => {});
  return new Promise((resolve) => {
    ws.once('open', () => resolve({ status: 101, ws }));
    ws.once('unexpected-response', (req, res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => {
        resolve({ status: res.statusCode ?? 0, retryAfter: res.headers['retry-after'], body });
        req.destroy();
      });
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
    const fx = await startGateway({ limits: { upgradesPerAddress: 5, upgradeWindowMs: 60_000 } });
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
    const fx = await startGateway({ limits: { upgradesPerAddress: 2, upgradeWindowMs: 300 } });
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

  it('limits loopback like any other address; only limitExempt addresses and blocks skip the limit', async () => {
    const limited = await startGateway({ limits: { upgradesPerAddress: 2 } });
    try {
      await limited.connect();
      await limited.connect();
      assert.equal((await attempt(limited.url)).status, 429, 'no built-in loopback exemption');
    } finally {
      await limited.close();
    }
    const exempt = await startGateway({ limits: { upgradesPerAddress: 2 }, limitExempt: ['127.0.0.0/30'] });
    try {
      for (let i = 0; i < 5; i++) await exempt.connect();
      assert.equal(exempt.gateway.connectionCount(), 5);
      // 127.0.0.5 is outside 127.0.0.0/30.
      for (let i = 0; i < 2; i++) await exempt.connect({ localAddress: '127.0.0.5' });
      assert.equal((await attempt(exempt.url, { localAddress: '127.0.0.5' })).status, 429);
    } finally {
      await exempt.close();
    }
  });

  it('counts attempts per address key (IPv6 per /64) and bounds its table', () => {
    const limiter = new AddressRateLimiter({ limit: 1, windowMs: 1000, maxAddresses: 2 });
    assert.equal(limiter.take(addressKey('2001:db8:1:2::1'), 0), true);
    assert.equal(limiter.take(addressKey('2001:db8:1:2::99'), 1), false, 'same /64');
    assert.equal(limiter.take('10.0.0.2', 2), true);
    // The table is full: a third address passes uncounted rather than growing it.
    assert.equal(limiter.take('10.0.0.3', 3), true);
    assert.equal(limiter.take('10.0.0.3', 4), true);
    assert.equal(limiter.take('10.0.0.2', 5), false);
    // A new window forgets everything.
    assert.equal(limiter.take('10.0.0.2', 1000), true);
  });
});

describe('open sockets per address', () => {
  it('has the documented default', () => {
    assert.equal(defaultLimits().maxConnectionsPerAddress, 200);
  });

  it('refuses the 201st open socket of 127.0.0.2 with 429; others still connect; a close frees a slot', async () => {
    // Attempts are allowed generously here, so that the open-socket cap is what refuses.
    const fx = await startGateway({ limits: { upgradesPerAddress: 10_000 } });
    const open: WebSocket[] = [];
    try {
      const results = [];
      for (let i = 0; i < 250; i++) {
        const result = await attempt(fx.url, { localAddress: '127.0.0.2' });
        results.push(result);
        if (result.ws) open.push(result.ws);
      }
      const firstRefused = results.findIndex((r) => r.status !== 101);
      assert.equal(firstRefused, 200, 'the 201st socket is the first refused');
      assert.ok(
        results.slice(200).every((r) => r.status === 429 && /open connections/.test(r.body ?? '')),
        'every one past the cap: 429 for open connections',
      );
      assert.equal(fx.gateway.connectionCount(), 200);
      // Another address is not affected, nor is the process-wide cap reached.
      const other = await attempt(fx.url, { localAddress: '127.0.0.3' });
      assert.equal(other.status, 101);
      open.push(other.ws!);
      // The cap counts open sockets, not attempts: one closes, one more may open.
      const leaving = open.shift()!;
      const gone = new Promise((resolve) => leaving.once('close', resolve));
      leaving.close();
      await gone;
      await waitFor(() => fx.gateway.connectionCount() === 200, { what: 'the close to reach the gateway' });
      const again = await attempt(fx.url, { localAddress: '127.0.0.2' });
      assert.equal(again.status, 101);
      open.push(again.ws!);
      assert.equal((await attempt(fx.url, { localAddress: '127.0.0.2' })).status, 429);
    } finally {
      for (const ws of open) ws.terminate();
      await fx.close();
    }
  });
});

describe('client address behind a trusted proxy', () => {
  it('counts each forwarded client on its own; a forged X-Forwarded-For from elsewhere changes nothing', async () => {
    const fx = await startGateway({ limits: { maxConnectionsPerAddress: 2 }, trustProxy: ['127.0.0.1'] });
    const open: WebSocket[] = [];
    const via = (localAddress: string, forwardedFor?: string) =>
      attempt(fx.url, { localAddress, headers: forwardedFor ? { 'x-forwarded-for': forwardedFor } : {} }).then((r) => {
        if (r.ws) open.push(r.ws);
        return r.status;
      });
    try {
      // The proxy (127.0.0.1) speaks for two clients: each has its own two slots.
      assert.deepEqual([await via('127.0.0.1', '203.0.113.1'), await via('127.0.0.1', '203.0.113.1')], [101, 101]);
      assert.equal(await via('127.0.0.1', '203.0.113.1'), 429);
      assert.equal(await via('127.0.0.1', '203.0.113.2'), 101);
      // A client that writes its own header is still known by what the proxy appended.
      assert.equal(await via('127.0.0.1', '198.51.100.9, 203.0.113.1'), 429);
      // An untrusted peer (127.0.0.7) cannot pass itself off as someone else: its header is ignored.
      assert.deepEqual([await via('127.0.0.7', '203.0.113.3'), await via('127.0.0.7', '203.0.113.4')], [101, 101]);
      assert.equal(await via('127.0.0.7', '203.0.113.5'), 429);
    } finally {
      for (const ws of open) ws.terminate();
      await fx.close();
    }
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
