import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { createConnection } from 'node:net';
import { WebSocket } from 'ws';
import { defaultLimits } from '../src/index.ts';
import { InvalidLimitError } from '../src/limits.ts';
import { createGateway } from '../src/index.ts';
import { MemoryBroker, createEventPublisher } from '@repo/broker';
import { startGateway, type GatewayFixture } from './gateway-fixture.ts';
import { TestClient, waitFor } from '@repo/test-support';

const PORTFOLIO_CHANNEL = 'trading:events:portfolio:update';

/** A portfolio of about 6 KB, to fill socket buffers quickly. */
function bigPortfolio(userId: number, version: number): string {
  const balances = Array.from({ length: 100 }, (_, i) => ({
    asset: `A${i}`,
    available: `${version}.${String(i).padStart(6, '0')}`,
    locked: '0',
  }));
  return JSON.stringify({ userId, balances, positions: [], timestamp: new Date().toISOString(), version });
}

describe('limits', () => {
  it('has the documented defaults', () => {
    const limits = defaultLimits();
    assert.equal(limits.maxPayloadBytes, 16 * 1024);
    assert.equal(limits.messagesPerWindow, 50);
    assert.equal(limits.rateWindowMs, 1000);
    assert.equal(limits.hardBufferedBytes, 1024 * 1024);
    assert.equal(limits.pingIntervalMs, 25_000);
    assert.equal(limits.pongTimeoutMs, 10_000);
    assert.equal(limits.closeGraceMs, 2_000);
    assert.equal(limits.slowConsumerDrainMs, 30_000);
  });

  it('refuses limits that cannot work, naming them', async () => {
    const make = (limits: object) =>
      createGateway({ broker: new MemoryBroker(), sessions: { verify: () => Promise.resolve(null) }, limits });
    await assert.rejects(
      make({ softBufferedBytes: 2_000_000 }),
      (err: Error) => err instanceof InvalidLimitError && /softBufferedBytes.*hardBufferedBytes/.test(err.message),
    );
    await assert.rejects(make({ maxConnections: -1 }), /maxConnections/);
    await assert.rejects(
      make({ closeGraceMs: 5_000, slowConsumerDrainMs: 4_000 }),
      (err: Error) => err instanceof InvalidLimitError && /slowConsumerDrainMs.*closeGraceMs/.test(err.message),
    );
    await assert.rejects(make({ pingIntervalMs: 'soon' }), /pingIntervalMs/);
    await assert.rejects(
      make({ pongTimeoutMs: 2 ** 31 }),
      (err: Error) => err instanceof InvalidLimitError && /pongTimeoutMs.*at most/.test(err.message),
    );
    // The history reads' limits too: with no read slot every read would wait forever.
    const withHistory = (historyLimits: object) =>
      createGateway({
        broker: new MemoryBroker(),
        sessions: { verify: () => Promise.resolve(null) },
        history: { read: () => Promise.reject(new Error('not read')) },
        historyLimits,
      });
    await assert.rejects(withHistory({ concurrentReads: 0 }), /concurrentReads/);
    await assert.rejects(withHistory({ timeoutMs: 2 ** 31 }), /timeoutMs.*at most/);
    await assert.rejects(withHistory({ pageEvents: Number.NaN }), /pageEvents/);
    await assert.rejects(withHistory({ pageSize: 10 }), /unknown history limit "pageSize"/);
  });

  it('closes a socket that sends a frame over 16 KiB with 1009, and accepts one at the limit', async () => {
    const fx = await startGateway();
    try {
      const client = await fx.connect();
      const atLimit = JSON.stringify({ type: 'ping', id: 'edge', pad: '' });
      client.send(atLimit.replace('"pad":""', `"pad":"${'x'.repeat(16 * 1024 - atLimit.length)}"`));
      assert.deepEqual(await client.next(), { type: 'pong', id: 'edge' });
      client.send(JSON.stringify({ type: 'ping', pad: 'x'.repeat(16 * 1024) }));
      assert.equal((await client.closed).code, 1009);
      const other = await fx.connect();
      await other.barrier();
    } finally {
      await fx.close();
    }
  });

  it('answers messages over 50 per second with rate_limited, then serves the socket again', async () => {
    const fx = await startGateway();
    try {
      const client = await fx.connect();
      for (let i = 0; i < 60; i += 1) client.send({ type: 'ping', id: i });
      const replies = [];
      for (let i = 0; i < 60; i += 1) replies.push(await client.next());
      assert.equal(replies.filter((m) => m.type === 'pong').length, 50);
      const limited = replies.filter((m) => m.type === 'error' && m.code === 'rate_limited');
      assert.deepEqual(
        limited.map((m) => (m as { id?: number }).id),
        [50, 51, 52, 53, 54, 55, 56, 57, 58, 59],
      );
      // Once the window has passed the same socket is served again.
      await waitFor(
        async () => {
          const reply = await client.request({ type: 'ping' });
          return reply.type === 'pong';
        },
        { timeoutMs: 3000, intervalMs: 100, what: 'pong after the rate window' },
      );
      assert.equal((await fx.metric('tradewire_ws_client_errors_total', { code: 'rate_limited' })) >= 10, true);
    } finally {
      await fx.close();
    }
  });

  it('closes a socket that keeps flooding with 1008', async () => {
    const fx = await startGateway();
    try {
      const client = await fx.connect();
      for (let i = 0; i < 200; i += 1) client.send({ type: 'ping', id: i });
      const { code } = await client.closed;
      assert.equal(code, 1008);
      assert.equal(client.ofType('pong').length, 50);
      assert.equal(client.ofType('error').length, 50);
      assert.equal(await fx.metric('tradewire_ws_disconnects_total', { reason: 'flood' }), 1);
    } finally {
      await fx.close();
    }
  });

  it('answers upgrades past the connection cap with HTTP 503', async () => {
    const fx = await startGateway({ limits: { maxConnections: 3 } });
    try {
      const clients = await Promise.all([fx.connect(), fx.connect(), fx.connect()]);
      assert.equal(await TestClient.refusedStatus(fx.url), 503);
      await clients[0].close();
      await waitFor(() => fx.gateway.connectionCount() === 2, { what: 'connection count 2' });
      const again = await fx.connect();
      await again.barrier();
    } finally {
      await fx.close();
    }
  });

  it('closes a refused upgrade whose client never closes its side, and still shuts down', async () => {
    const fx = await startGateway({ allowedOrigins: ['https://app.tradewire.test'] });
    // A client (hostile, or gone) that reads the refusal but never sends its FIN: a socket the
    // gateway only half-closed would hold a descriptor for good and keep close() waiting.
    const { port } = new URL(fx.url);
    const socket = createConnection({ port: Number(port), host: '127.0.0.1', allowHalfOpen: true });
    let closed = false;
    try {
      let answer = '';
      let ended = false;
      let gone = false;
      socket.on('data', (chunk: Buffer) => (answer += chunk.toString()));
      socket.on('end', () => (ended = true));
      socket.on('error', () => {});
      socket.on('close', () => (gone = true));
      await once(socket, 'connect');
      socket.write(
        'GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
          'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n' +
          'Origin: https://evil.test\r\n\r\n',
      );
      await waitFor(() => ended, { what: "the refusal and the gateway's FIN" });
      assert.match(answer, /^HTTP\/1\.1 403 /);
      // Bytes to a socket the gateway has let go of are answered with a reset.
      await waitFor(
        () => {
          if (!gone) socket.write('x');
          return gone;
        },
        { what: 'the gateway to close the refused socket entirely' },
      );
      const closing = fx.close().then(() => (closed = true));
      await waitFor(() => closed, { timeoutMs: 5000, what: 'the gateway to shut down' });
      await closing;
    } finally {
      socket.destroy();
      if (!closed) await fx.close();
    }
  });

  it('answers upgrades from origins off the allow-list with HTTP 403', async () => {
    const fx = await startGateway({ allowedOrigins: ['https://app.tradewire.test'] });
    try {
      assert.equal(await TestClient.refusedStatus(fx.url, { origin: 'https://evil.test' }), 403);
      const allowed = await fx.connect({ origin: 'https://app.tradewire.test' });
      await allowed.barrier();
      const noOrigin = await fx.connect();
      await noOrigin.barrier();
    } finally {
      await fx.close();
    }
  });

  it('closes a consumer that stops reading with 4008 once past the hard limit, without gaps before it', async () => {
    const fx = await startGateway({
      limits: { softBufferedBytes: 32 * 1024, hardBufferedBytes: 256 * 1024, closeGraceMs: 15_000 },
    });
    const publisher = createEventPublisher(fx.broker);
    try {
      const { client: stalled } = await fx.connectAs(1);
      await stalled.request({ type: 'subscribe', channel: 'portfolio' });
      const healthy = await fx.connect();
      await healthy.request({ type: 'subscribe', channel: 'prices' });
      stalled.ws.pause();
      let version = 0;
      await waitFor(
        async () => {
          for (let i = 0; i < 50; i += 1) await fx.broker.publish(PORTFOLIO_CHANNEL, bigPortfolio(1, (version += 1)));
          return (await fx.metric('tradewire_ws_disconnects_total', { reason: 'slow_consumer' })) === 1;
        },
        { timeoutMs: 20_000, intervalMs: 1, what: 'slow consumer close' },
      );
      // The stalled socket does not hold up the others.
      await publisher.publishPriceUpdate('SOL', '77');
      await healthy.waitFor((m) => m.type === 'price' && m.price === '77', 2000);
      stalled.ws.resume();
      const closed = await stalled.closed;
      assert.deepEqual(closed, { code: 4008, reason: 'slow consumer' });
      const versions = stalled.ofType('portfolio').map((m) => m.version);
      assert.ok(versions.length > 0 && versions.length < version, `got ${versions.length} of ${version}`);
      assert.deepEqual(
        versions,
        versions.map((_, i) => i + 1),
        'portfolio updates before the close arrive without a gap',
      );
    } finally {
      await fx.close();
    }
  });

  /** Publishes big portfolios to user 1 until the gateway judges a socket a slow consumer. */
  async function floodUntilSlowConsumer(fx: GatewayFixture): Promise<void> {
    let version = 0;
    await waitFor(
      async () => {
        for (let i = 0; i < 50; i += 1) await fx.broker.publish(PORTFOLIO_CHANNEL, bigPortfolio(1, (version += 1)));
        return (await fx.metric('tradewire_ws_disconnects_total', { reason: 'slow_consumer' })) === 1;
      },
      { timeoutMs: 20_000, intervalMs: 1, what: 'slow consumer close' },
    );
  }

  it('tells a consumer stalled past closeGraceMs that it was slow (4008), not just cut off (1006)', async () => {
    // Default limits: 1 MiB queued, then the close frame behind it. A background tab or a frozen
    // phone reads nothing for a while; its close frame must survive the wait.
    const limits = defaultLimits();
    const fx = await startGateway();
    try {
      const { client: stalled } = await fx.connectAs(1);
      await stalled.request({ type: 'subscribe', channel: 'portfolio' });
      stalled.ws.pause();
      await floodUntilSlowConsumer(fx);
      // The stall itself is the scenario: the client reads nothing for longer than closeGraceMs.
      await sleep(limits.closeGraceMs + 1000);
      stalled.ws.resume();
      assert.deepEqual(await stalled.closed, { code: 4008, reason: 'slow consumer' });
    } finally {
      await fx.close();
    }
  });

  it("leaves a slow consumer's end to its drain deadline, not to a ping stuck behind its queue", async () => {
    const limits = {
      softBufferedBytes: 32 * 1024,
      hardBufferedBytes: 256 * 1024,
      pingIntervalMs: 500,
      pongTimeoutMs: 3000,
    };
    const fx = await startGateway({ limits });
    try {
      const { client: stalled } = await fx.connectAs(1);
      await stalled.request({ type: 'subscribe', channel: 'portfolio' });
      stalled.ws.pause();
      // A ping goes out while the client reads nothing: its pong cannot come before the resume.
      await sleep(limits.pingIntervalMs + 100);
      await floodUntilSlowConsumer(fx);
      await sleep(limits.pongTimeoutMs + 500);
      stalled.ws.resume();
      assert.deepEqual(await stalled.closed, { code: 4008, reason: 'slow consumer' });
      assert.equal(await fx.metric('tradewire_ws_disconnects_total', { reason: 'heartbeat' }), 0);
    } finally {
      await fx.close();
    }
  });

  it('destroys a slow consumer that never reads again once slowConsumerDrainMs has passed', async () => {
    const limits = {
      softBufferedBytes: 32 * 1024,
      hardBufferedBytes: 256 * 1024,
      closeGraceMs: 200,
      slowConsumerDrainMs: 1500,
    };
    const fx = await startGateway({ limits });
    try {
      const { client: dead } = await fx.connectAs(1);
      await dead.request({ type: 'subscribe', channel: 'portfolio' });
      dead.ws.pause();
      await floodUntilSlowConsumer(fx);
      const judgedAt = performance.now();
      await waitFor(() => fx.gateway.connectionCount() === 0, {
        timeoutMs: limits.slowConsumerDrainMs + 2000,
        what: 'the dead peer to be destroyed',
      });
      const heldMs = performance.now() - judgedAt;
      // It got the whole drain deadline, not just the close grace, and no more than that.
      assert.ok(heldMs >= limits.slowConsumerDrainMs - 50, `destroyed after ${Math.round(heldMs)} ms`);
      assert.equal(await fx.metric('tradewire_ws_disconnects_total', { reason: 'slow_consumer' }), 1);
    } finally {
      await fx.close();
    }
  });

  it('destroys other closing sockets closeGraceMs after the close frame, not slowConsumerDrainMs', async () => {
    const limits = { closeGraceMs: 300, slowConsumerDrainMs: 60_000, messagesPerWindow: 5, floodCloseAfter: 5 };
    const fx = await startGateway({ limits });
    try {
      // The gateway closes a flooder (1008) that then reads nothing: its close is never answered.
      const flooder = await fx.connect();
      flooder.ws.pause();
      for (let i = 0; i < 20; i += 1) flooder.send({ type: 'ping' });
      await waitFor(async () => (await fx.metric('tradewire_ws_disconnects_total', { reason: 'flood' })) === 1, {
        what: 'the flood close',
      });
      await waitFor(() => fx.gateway.connectionCount() === 0, { timeoutMs: 3000, what: 'the flooder destroyed' });
      // A peer that starts the close itself and then goes silent never finishes it either.
      const quitter = await fx.connect();
      await quitter.barrier();
      quitter.ws.pause();
      quitter.ws.close(1000, 'bye');
      await waitFor(() => fx.gateway.connectionCount() === 0, { timeoutMs: 3000, what: 'the quitter destroyed' });
    } finally {
      await fx.close();
    }
  });

  it('conflates price ticks for a slow consumer, latest per symbol, and flushes them when it drains', async () => {
    const fx = await startGateway({ limits: { softBufferedBytes: 32 * 1024, hardBufferedBytes: 64 * 1024 * 1024 } });
    const publisher = createEventPublisher(fx.broker);
    try {
      const { client } = await fx.connectAs(2);
      await client.request({ type: 'subscribe', channel: 'portfolio' });
      await client.request({ type: 'subscribe', channel: 'prices' });
      client.skipReceived();
      client.ws.pause();
      let version = 0;
      let tick = 0;
      await waitFor(
        async () => {
          for (let i = 0; i < 20; i += 1) {
            await fx.broker.publish(PORTFOLIO_CHANNEL, bigPortfolio(2, (version += 1)));
            await publisher.publishPriceUpdate('SOL', String((tick += 1)));
            await publisher.publishPriceUpdate('BTC', String(tick));
          }
          return (await fx.metric('tradewire_ws_events_dropped_total', { reason: 'slow_consumer' })) >= 10;
        },
        { timeoutMs: 20_000, intervalMs: 1, what: 'conflated ticks' },
      );
      const last = String((tick += 1));
      await publisher.publishPriceUpdate('SOL', last);
      await publisher.publishPriceUpdate('BTC', last);
      client.ws.resume();
      await client.waitFor((m) => m.type === 'price' && m.symbol === 'SOL' && m.price === last, 10_000);
      await client.waitFor((m) => m.type === 'price' && m.symbol === 'BTC' && m.price === last, 10_000);
      await client.barrier(10_000);
      const versions = client.ofType('portfolio').map((m) => m.version);
      assert.deepEqual(
        versions,
        Array.from({ length: version }, (_, i) => i + 1),
        'every portfolio update, in order',
      );
      for (const symbol of ['SOL', 'BTC']) {
        const ticks = client
          .ofType('price')
          .filter((m) => m.symbol === symbol)
          .map((m) => Number(m.price));
        assert.ok(ticks.length < tick, `${symbol}: ${ticks.length} ticks of ${tick} were sent`);
        assert.deepEqual(
          ticks,
          [...ticks].sort((a, b) => a - b),
          `${symbol} ticks stay in order`,
        );
      }
      assert.equal(client.ws.readyState, client.ws.OPEN);
    } finally {
      await fx.close();
    }
  });

  it('closes connections that do not finish their upgrade request in time, never an upgraded socket', async () => {
    const fx = await startGateway({ limits: { handshakeTimeoutMs: 300 } });
    try {
      const upgraded = await fx.connect();
      const slow = createConnection({ host: '127.0.0.1', port: fx.port });
      await once(slow, 'connect');
      slow.write('GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n'); // never finished
      let answer = '';
      slow.on('data', (chunk) => (answer += chunk.toString()));
      await once(slow, 'close');
      assert.match(answer, /^HTTP\/1\.1 408/);
      // The upgraded socket is older than the one just cut off, and still served.
      await upgraded.barrier();
    } finally {
      await fx.close();
    }
  });

  it('terminates sockets that do not answer pings, and keeps those that do', async () => {
    const fx = await startGateway({ limits: { pingIntervalMs: 100, pongTimeoutMs: 500 } });
    try {
      // Before connecting: the first ping may come before the client sees the socket open.
      const openedAt = performance.now();
      const silent = await fx.connect({ autoPong: false });
      const alive = await fx.connect();
      let pings = 0;
      alive.ws.on('ping', () => (pings += 1));
      const { code } = await silent.closed;
      assert.equal(code, 1006, 'terminated without a close frame');
      // First ping within one interval, then the deadline; the slack is for a loaded test machine.
      const tookMs = performance.now() - openedAt;
      assert.ok(tookMs >= 500 && tookMs < 100 + 500 + 1000, `terminated after ${tookMs.toFixed(0)} ms`);
      await waitFor(() => pings >= 2, { what: 'two pings at the live socket' });
      await alive.barrier();
      assert.equal(await fx.metric('tradewire_ws_disconnects_total', { reason: 'heartbeat' }), 1);
    } finally {
      await fx.close();
    }
  });

  it('does not blame sockets for a stall of the gateway itself', async () => {
    // Gateway and client share this process. The loop is blocked right after a ping is written,
    // longer than the pong deadline: the client has not even read the ping when the stall ends,
    // so its pong needs two more I/O polls. The heartbeat gives it a tick of grace.
    // A 500 ms deadline, not less: on a loaded machine (npm test runs two files at once) a
    // same-process pong can take a few hundred ms even without the stall.
    const fx = await startGateway({ limits: { pingIntervalMs: 150, pongTimeoutMs: 500 } });
    // eslint-disable-next-line @typescript-eslint/unbound-method -- put back as it was, called with apply
    const realPing = WebSocket.prototype.ping;
    let stalls = 0;
    try {
      const clients = await Promise.all(Array.from({ length: 5 }, () => fx.connect()));
      let pings = 0;
      for (const client of clients) client.ws.on('ping', () => (pings += 1));
      await waitFor(() => pings >= clients.length, { what: 'a ping at every socket' });
      WebSocket.prototype.ping = function (this: WebSocket, ...args: Parameters<WebSocket['ping']>) {
        realPing.apply(this, args);
        if (stalls > 0) return;
        stalls += 1;
        queueMicrotask(() => {
          const until = performance.now() + 1200;
          while (performance.now() < until);
        });
      };
      const before = pings;
      await waitFor(() => stalls === 1 && pings >= before + clients.length * 2, {
        what: 'two more pings at every socket after the stall',
      });
      for (const client of clients) await client.barrier();
      assert.equal(await fx.metric('tradewire_ws_disconnects_total', { reason: 'heartbeat' }), 0);
    } finally {
      WebSocket.prototype.ping = realPing;
      await fx.close();
    }
  });

  it('spreads pings over the interval instead of pinging every socket in one tick', async () => {
    // A ping burst holds the event loop for everyone (docs/benchmarks.md, "What profiling found").
    // 20 sockets with consecutive ids over 20 slices of a 200 ms interval: one per slice.
    const fx = await startGateway({ limits: { pingIntervalMs: 200, pongTimeoutMs: 5000 } });
    try {
      const clients = await Promise.all(Array.from({ length: 20 }, () => fx.connect()));
      const firstPing: number[] = [];
      for (const client of clients) client.ws.once('ping', () => firstPing.push(performance.now()));
      await waitFor(() => firstPing.length === clients.length, { what: 'a ping at every socket', timeoutMs: 5000 });
      const spread = Math.max(...firstPing) - Math.min(...firstPing);
      assert.ok(spread >= 100, `20 sockets were pinged within ${spread.toFixed(0)} ms of each other`);
      for (const client of clients) await client.barrier();
    } finally {
      await fx.close();
    }
  });

  it('wakes its timer a few times a second when it has few sockets, not once per 10 ms slice', async () => {
    // Every wake-up of an idle worker costs CPU (docs/benchmarks.md, "The heartbeat's idle
    // wake-ups"). Two sockets and a 2 s interval: 200 slices, a ping every second.
    const realSetInterval = globalThis.setInterval;
    let wakeUps = 0;
    globalThis.setInterval = ((callback: () => void, ms?: number) =>
      realSetInterval(() => {
        wakeUps += 1;
        callback();
      }, ms)) as typeof setInterval;
    const fx = await startGateway({ limits: { pingIntervalMs: 2000, pongTimeoutMs: 8000 } });
    try {
      const startedAt = performance.now();
      const clients = await Promise.all([fx.connect(), fx.connect()]);
      // Still pinged once per interval: each socket twice, then the rate of wake-ups is read.
      await Promise.all(
        clients.map(async (client) => {
          for (let n = 0; n < 2; n += 1) await once(client.ws, 'ping');
        }),
      );
      const perSecond = wakeUps / ((performance.now() - startedAt) / 1000);
      assert.ok(perSecond < 10, `${perSecond.toFixed(1)} timer wake-ups a second for 2 sockets`);
      for (const client of clients) await client.barrier();
    } finally {
      globalThis.setInterval = realSetInterval;
      await fx.close();
    }
  });

  it('spreads the first pings of a crowd that arrives at an idle gateway', async () => {
    // The idle gateway wakes every 640 ms; 80 sockets at an 800 ms interval need a wake-up every
    // 40 ms (4 slices of one socket each). Left to the next long wake-up, the 64 rounds due since
    // the last would go out at once; at most 16 (four wake-ups' worth) may, after a stall.
    // eslint-disable-next-line @typescript-eslint/unbound-method -- put back as it was, called with apply
    const realPing = WebSocket.prototype.ping;
    const sentAt: number[] = [];
    WebSocket.prototype.ping = function (this: WebSocket, ...args: Parameters<WebSocket['ping']>) {
      sentAt.push(performance.now());
      realPing.apply(this, args);
    };
    const fx = await startGateway({ limits: { pingIntervalMs: 800, pongTimeoutMs: 5000 } });
    try {
      const clients = await Promise.all(Array.from({ length: 80 }, () => fx.connect()));
      // Once all 80 are in, the 40 ms period is in force, its catch-up bound 16 rounds; the idle
      // 640 ms wake-up, left to run, would fall in this window.
      const since = sentAt.length;
      await Promise.all(clients.map((client) => once(client.ws, 'ping')));
      // The most pings the gateway sent within 5 ms of each other (one wake-up's worth).
      let burst = 0;
      for (let first = since, last = since; last < sentAt.length; last += 1) {
        while (sentAt[last]! - sentAt[first]! > 5) first += 1;
        burst = Math.max(burst, last - first + 1);
      }
      assert.ok(burst <= 16, `${burst} of 80 sockets were pinged within 5 ms`);
      for (const client of clients) await client.barrier();
    } finally {
      WebSocket.prototype.ping = realPing;
      await fx.close();
    }
  });
});
