import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createConnection, type Socket } from 'node:net';
import { describe, it } from 'node:test';
import { createEventPublisher } from '@repo/broker';
import { waitFor } from '@repo/test-support';
import { startGateway } from './gateway-fixture.ts';

/** A masked client ping frame (RFC 6455 §5.5.2) carrying `payload` (at most 125 bytes). */
function pingFrame(payload: Buffer): Buffer {
  const mask = Buffer.from([1, 2, 3, 4]);
  const masked = Buffer.from(payload.map((byte, i) => byte ^ mask[i % 4]!));
  return Buffer.concat([Buffer.from([0x89, 0x80 | payload.length]), mask, masked]);
}

/** A raw TCP socket upgraded to a WebSocket, with the 101 response read; nothing else is read. */
async function rawUpgrade(port: number): Promise<Socket> {
  const socket = createConnection({ port, host: '127.0.0.1' });
  await once(socket, 'connect');
  socket.write(
    'GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
      'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
  );
  const [head] = (await once(socket, 'data')) as [Buffer];
  assert.match(head.toString('latin1'), /^HTTP\/1\.1 101 /);
  socket.pause();
  return socket;
}

// The gateway's sockets take their events without listeners and answer pings themselves
// (GatewaySocket); these pin down what ws did for them before.
describe('socket events', () => {
  it("answers a client's ping with a pong of the same data", async () => {
    const fx = await startGateway();
    try {
      const client = await fx.connect();
      for (const data of ['first', 'second']) {
        client.ws.ping(Buffer.from(data));
        const [pong] = (await once(client.ws, 'pong')) as [Buffer];
        assert.equal(pong.toString(), data);
      }
      // Still a working socket afterwards.
      assert.equal((await client.request({ type: 'ping', id: 'after' })).type, 'pong');
    } finally {
      await fx.close();
    }
  });

  it('closes a peer that pings without reading the pongs, as a slow consumer', async () => {
    const fx = await startGateway({ limits: { softBufferedBytes: 16 * 1024, hardBufferedBytes: 64 * 1024 } });
    const socket = await rawUpgrade(fx.port);
    try {
      const frame = pingFrame(Buffer.alloc(125, 7));
      // Until the gateway gives up on it: its kernel buffers fill first, then the hard limit.
      let sent = 0;
      const closed = () => fx.metric('tradewire_ws_disconnects_total', { reason: 'slow_consumer' });
      while ((await closed()) === 0 && sent < 400_000) {
        for (let i = 0; i < 2000; i++) socket.write(frame);
        sent += 2000;
        await new Promise((resolve) => setImmediate(resolve));
      }
      assert.equal(await closed(), 1, `closed as a slow consumer after ${sent} pings`);
    } finally {
      socket.destroy();
      await fx.close();
    }
  });

  it('still reports protocol errors and closes: an oversized frame gets 1009', async () => {
    const fx = await startGateway({ limits: { maxPayloadBytes: 1024 } });
    try {
      const client = await fx.connect();
      client.send('x'.repeat(2048));
      const { code } = await client.closed;
      assert.equal(code, 1009);
      await waitFor(() => fx.gateway.connectionCount() === 0, { what: 'the socket forgotten' });
    } finally {
      await fx.close();
    }
  });

  it('writes every tick, intact and in order, to every subscriber', async () => {
    const fx = await startGateway({ symbols: ['SOL'] });
    try {
      const clients = await Promise.all(Array.from({ length: 40 }, () => fx.connect()));
      for (const client of clients) {
        assert.equal((await client.request({ type: 'subscribe', channel: 'prices' })).type, 'subscribed');
        client.skipReceived();
      }
      const events = createEventPublisher(fx.broker);
      const prices = Array.from({ length: 25 }, (_, i) => `${100 + i}.${String(i).padStart(2, '0')}`);
      for (const price of prices) await events.publishPriceUpdate('SOL', price);
      for (const client of clients) {
        await waitFor(() => client.ofType('price').length >= prices.length, { what: 'every tick at a client' });
        assert.deepEqual(
          client.ofType('price').map((m) => [m.symbol, m.price]),
          prices.map((price) => ['SOL', price]),
        );
      }
    } finally {
      await fx.close();
    }
  });
});
