import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createEventPublisher } from '@repo/broker';
import { startGateway } from './gateway-fixture.ts';
import { TestClient } from '@repo/test-support';

const httpUrl = (wsUrl: string, path: string) => wsUrl.replace('ws://', 'http://') + path;

describe('gateway HTTP side and shutdown', () => {
  it('GET /health reports status, broker and connections', async () => {
    const fx = await startGateway();
    try {
      await fx.connect();
      await fx.connect();
      const res = await fetch(httpUrl(fx.url, '/health'));
      assert.equal(res.status, 200);
      assert.match(res.headers.get('content-type') ?? '', /application\/json/);
      assert.deepEqual(await res.json(), { status: 'ok', broker: 'up', connections: 2 });
    } finally {
      await fx.close();
    }
  });

  it('GET /metrics exposes connections, subscriptions, deliveries, drops, client errors and latency', async () => {
    const fx = await startGateway();
    try {
      const client = await fx.connect();
      await client.request({ type: 'subscribe', channel: 'prices' });
      client.send('nope');
      await client.waitFor((m) => m.type === 'error');
      await createEventPublisher(fx.broker).publishPriceUpdate('SOL', '9');
      await client.waitFor((m) => m.type === 'price');
      await fx.broker.publish('trading:events:price:update', '{bad');
      await client.barrier();
      const res = await fetch(httpUrl(fx.url, '/metrics'));
      assert.equal(res.status, 200);
      assert.match(res.headers.get('content-type') ?? '', /text\/plain/);
      const text = await res.text();
      for (const line of [
        'tradewire_ws_connections 1',
        'tradewire_ws_subscriptions{channel="prices"} 1',
        'tradewire_ws_messages_delivered_total{type="price"} 1',
        'tradewire_ws_events_dropped_total{reason="malformed"} 1',
        'tradewire_ws_client_errors_total{code="invalid_json"} 1',
        'tradewire_ws_event_latency_seconds_count 1',
        'tradewire_ws_broker_up 1',
      ]) {
        assert.ok(text.includes(line), `metrics include ${line}`);
      }
    } finally {
      await fx.close();
    }
  });

  it('GET /metrics answers loopback clients only, or the bearer of the metrics token, as the API does', async () => {
    const scrape = (url: string, headers: Record<string, string> = {}) =>
      fetch(httpUrl(url, '/metrics'), { headers }).then(async (res) => ({
        status: res.status,
        body: await res.text(),
        challenge: res.headers.get('www-authenticate'),
      }));
    // Behind a trusted proxy on this machine, the client is the forwarded address, not loopback.
    const proxied = await startGateway({ trustProxy: ['127.0.0.1'] });
    try {
      assert.equal((await scrape(proxied.url)).status, 200, 'the proxy host itself');
      const outsider = await scrape(proxied.url, { 'x-forwarded-for': '203.0.113.5' });
      assert.deepEqual([outsider.status, JSON.parse(outsider.body)], [403, { error: 'forbidden' }]);
      assert.equal((await scrape(proxied.url, { 'x-forwarded-for': '127.0.0.1' })).status, 200);
    } finally {
      await proxied.close();
    }
    // Without trusted proxies a forwarded header changes nothing.
    const direct = await startGateway();
    try {
      assert.equal((await scrape(direct.url, { 'x-forwarded-for': '203.0.113.5' })).status, 200);
    } finally {
      await direct.close();
    }
    // With a token, every client needs it, loopback included.
    const token = 'metrics-token-0123456789';
    const guarded = await startGateway({ metricsToken: token });
    try {
      const missing = await scrape(guarded.url);
      assert.deepEqual([missing.status, missing.challenge], [401, 'Bearer']);
      assert.equal((await scrape(guarded.url, { authorization: 'Bearer wrong-token-0123456789' })).status, 401);
      const ok = await scrape(guarded.url, { authorization: `Bearer ${token}` });
      assert.equal(ok.status, 200);
      assert.match(ok.body, /tradewire_ws_connections/);
      assert.equal((await fetch(httpUrl(guarded.url, '/health'))).status, 200, '/health stays open');
    } finally {
      await guarded.close();
    }
  });

  it('answers other paths with 404', async () => {
    const fx = await startGateway();
    try {
      for (const path of ['/', '/nope', '/healthz', '/metrics/x']) {
        const res = await fetch(httpUrl(fx.url, path));
        assert.equal(res.status, 404, path);
        await res.body?.cancel();
      }
    } finally {
      await fx.close();
    }
  });

  it('close() closes every socket with 1001, refuses new upgrades, and finishes fast', async () => {
    const fx = await startGateway();
    const clients = await Promise.all([fx.connect(), fx.connect(), fx.connect()]);
    await clients[0].request({ type: 'subscribe', channel: 'prices' });
    const started = Date.now();
    const closing = fx.gateway.close();
    const codes = await Promise.all(clients.map((c) => c.closed.then((closed) => closed.code)));
    await closing;
    assert.deepEqual(codes, [1001, 1001, 1001]);
    // Well inside the 2 s close grace: every client answered the close.
    assert.ok(Date.now() - started < 1800, `close took ${Date.now() - started} ms`);
    assert.equal(fx.gateway.connectionCount(), 0);
    await assert.rejects(TestClient.connect(fx.url));
    // The broker is the caller's: still usable after the gateway closed.
    await fx.broker.publish('trading:events:price:update', '{}');
    await fx.broker.close();
  });

  it('close() finishes within the close grace even when a client never answers', async () => {
    const fx = await startGateway({ limits: { closeGraceMs: 300 } });
    const stalled = await fx.connect();
    stalled.ws.pause();
    const started = Date.now();
    await fx.gateway.close();
    assert.ok(Date.now() - started < 3000, `close took ${Date.now() - started} ms`);
    stalled.ws.resume();
    await stalled.closed;
    await fx.broker.close();
  });
});
