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
    assert.ok(Date.now() - started < 1000, `close took ${Date.now() - started} ms`);
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
    assert.ok(Date.now() - started < 1500, `close took ${Date.now() - started} ms`);
    stalled.ws.resume();
    await stalled.closed;
    await fx.broker.close();
  });
});
