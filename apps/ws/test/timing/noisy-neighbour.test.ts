import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createConnection, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { EVENT_CHANNELS, connectRedisBroker, type RedisBroker } from '@repo/broker';
import { TestClient, RedisServer, waitFor } from '@repo/test-support';

/**
 * One client floods, one stops reading while big events pile up for it, a hundred behave.
 * The gateway runs in its own process on a real Redis; the hundred are real sockets here.
 * Their price latency (publish → the last of the hundred has the tick) is measured undisturbed,
 * then disturbed: the disturbed figure must stay within twice the undisturbed one, and the
 * gateway's heap (after a GC) must not grow with the abuse.
 */

const WELL_BEHAVED = 100;
const TICK_MS = 40;
const PHASE_MS = 4000;
const ROOT = fileURLToPath(new URL('../../../../', import.meta.url));

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]!;
}

/** One masked client text frame (mask key 0, which RFC 6455 allows), payload under 126 bytes. */
function clientFrame(text: string): Buffer {
  const payload = Buffer.from(text);
  assert.ok(payload.length < 126);
  return Buffer.concat([Buffer.from([0x81, 0x80 | payload.length, 0, 0, 0, 0]), payload]);
}

const HANDSHAKE =
  'GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
  'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n';

/** A raw socket past the WebSocket handshake (frames in `first` go out with the handshake). */
async function rawSocket(port: number, first: Buffer = Buffer.alloc(0)): Promise<Socket> {
  const socket = createConnection({ host: '127.0.0.1', port });
  socket.on('error', () => {});
  await once(socket, 'connect');
  socket.write(Buffer.concat([Buffer.from(HANDSHAKE), first]));
  return socket;
}

/** A portfolio of about 30 KB, as the raw text a publisher would put on Redis. */
function bigPortfolio(userId: number, version: number): string {
  return JSON.stringify({
    userId,
    balances: Array.from({ length: 100 }, (_, i) => ({
      asset: `A${i}`,
      available: `${version}.${'1'.repeat(17)}`,
      locked: '0.000000000000000001',
    })),
    positions: Array.from({ length: 100 }, (_, i) => ({
      asset: `P${i}`,
      size: `${version}.5`,
      avgEntryPrice: '123456.123456789',
    })),
    timestamp: new Date().toISOString(),
    version,
  });
}

describe('noisy neighbours', () => {
  let redis: RedisServer;
  let publisher: RedisBroker;
  let child: ChildProcess;
  let port: number;
  let lines: AsyncIterator<string>;
  const good: TestClient[] = [];

  before(async () => {
    redis = await RedisServer.start();
    publisher = await connectRedisBroker(redis.url);
    child = spawn(
      `${ROOT}node_modules/.bin/tsx`,
      [fileURLToPath(new URL('../fixtures/gateway-process.ts', import.meta.url))],
      {
        cwd: ROOT,
        env: { ...process.env, REDIS_URL: redis.url, TOKENS: 'stall:999' },
        stdio: ['pipe', 'pipe', 'inherit'],
      },
    );
    lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
    port = (JSON.parse((await lines.next()).value as string) as { port: number }).port;
    for (let i = 0; i < WELL_BEHAVED; i++) {
      const client = await TestClient.connect(`ws://127.0.0.1:${port}`);
      await client.request({ type: 'subscribe', channel: 'prices' });
      good.push(client);
    }
  });
  after(async () => {
    for (const client of good) client.ws.terminate();
    child.kill('SIGTERM');
    await once(child, 'exit');
    await publisher.close();
    await redis.stop();
  });

  async function gatewayMemory(): Promise<{ heapUsed: number; rss: number }> {
    child.stdin!.write('memory\n');
    return JSON.parse((await lines.next()).value as string) as { heapUsed: number; rss: number };
  }

  async function disconnects(reason: string): Promise<number> {
    const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    const match = new RegExp(`^tradewire_ws_disconnects_total\\{reason="${reason}"\\} (\\d+)`, 'm').exec(text);
    return match ? Number(match[1]) : 0;
  }

  /** Ticks every TICK_MS for `ms`; resolves with each tick's time until all hundred had it. */
  async function measure(ms: number, onTick?: () => void): Promise<number[]> {
    const startedAt = new Map<string, { at: number; remaining: number }>();
    const latencies: number[] = [];
    const listeners = good.map((client) => {
      const listener = (data: Buffer) => {
        const text = String(data);
        if (!text.startsWith('{"type":"price"')) return;
        const tick = startedAt.get((JSON.parse(text) as { price: string }).price);
        if (!tick) return;
        tick.remaining -= 1;
        if (tick.remaining === 0) latencies.push(performance.now() - tick.at);
      };
      client.ws.on('message', listener);
      return () => client.ws.off('message', listener);
    });
    let n = 0;
    const timer = setInterval(() => {
      n += 1;
      const price = `${n}.${Date.now()}`;
      startedAt.set(price, { at: performance.now(), remaining: good.length });
      void publisher.publish(
        EVENT_CHANNELS.price,
        JSON.stringify({ symbol: 'SOL', price, timestamp: new Date().toISOString() }),
      );
      onTick?.();
    }, TICK_MS);
    await new Promise((resolve) => setTimeout(resolve, ms));
    clearInterval(timer);
    await waitFor(() => latencies.length === n, {
      timeoutMs: 5000,
      what: `all ${n} ticks at all hundred clients (have ${latencies.length})`,
    });
    for (const stop of listeners) stop();
    return latencies;
  }

  it('a flooder and a stalled reader do not slow the hundred down, and gateway memory stays bounded', async () => {
    const undisturbed = await measure(PHASE_MS);
    const memoryBefore = await gatewayMemory();

    // The flooder: 100 pings per write, as fast as the socket takes them; closed (1008), it comes back.
    let flooding = true;
    let floodSent = 0;
    const burst = Buffer.concat(Array.from({ length: 100 }, () => clientFrame('{"type":"ping"}')));
    const flood = (async () => {
      while (flooding) {
        const socket = await rawSocket(port);
        socket.resume(); // reads (and ignores) its answers, so only the flood itself is abusive
        // Not events.once: it would reject on the ECONNRESET a flood cut can bring.
        const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
        let open = true;
        void closed.then(() => (open = false));
        while (flooding && open) {
          floodSent += 100;
          if (!socket.write(burst))
            await Promise.race([new Promise((resolve) => socket.once('drain', resolve)), closed]);
          else await new Promise((resolve) => setImmediate(resolve));
        }
        socket.destroy();
        await closed;
      }
    })();

    // The staller: authenticated, subscribed to its portfolio, never reads a byte.
    const staller = await rawSocket(
      port,
      Buffer.concat([
        clientFrame('{"type":"auth","token":"stall"}'),
        clientFrame('{"type":"subscribe","channel":"portfolio"}'),
      ]),
    );
    staller.pause();
    let version = 0;

    const disturbed = await measure(PHASE_MS, () => {
      for (let i = 0; i < 4; i++) void publisher.publish(EVENT_CHANNELS.portfolio, bigPortfolio(999, (version += 1)));
    });
    flooding = false;
    await flood;
    const floodCloses = await disconnects('flood');
    const slowConsumerCuts = await disconnects('slow_consumer');
    staller.destroy();
    const memoryAfter = await gatewayMemory();
    const growth = memoryAfter.heapUsed - memoryBefore.heapUsed;

    const figures = {
      undisturbed: { p50: percentile(undisturbed, 0.5), p95: percentile(undisturbed, 0.95) },
      disturbed: { p50: percentile(disturbed, 0.5), p95: percentile(disturbed, 0.95) },
    };
    console.log(
      `noisy neighbours: ${WELL_BEHAVED} clients, a tick every ${TICK_MS} ms for ${PHASE_MS} ms per phase; ` +
        `undisturbed p50 ${figures.undisturbed.p50.toFixed(2)} ms p95 ${figures.undisturbed.p95.toFixed(2)} ms; ` +
        `disturbed p50 ${figures.disturbed.p50.toFixed(2)} ms p95 ${figures.disturbed.p95.toFixed(2)} ms; ` +
        `flood ${floodSent} messages, ${floodCloses} closes (1008); ` +
        `staller cut as slow consumer ${slowConsumerCuts}x (${version} portfolios of ~30 KB published); ` +
        `gateway heap ${mib(memoryBefore.heapUsed, 1)} → ${mib(memoryAfter.heapUsed, 1)} MiB, ` +
        `rss ${mib(memoryBefore.rss, 0)} → ${mib(memoryAfter.rss, 0)} MiB`,
    );

    // A millisecond of slack: the undisturbed median on loopback is near timer resolution.
    assert.ok(
      figures.disturbed.p50 <= 2 * figures.undisturbed.p50 + 1,
      `median ${figures.disturbed.p50} vs ${figures.undisturbed.p50}`,
    );
    // The tail swings with whatever else shares the two cores (a CI machine runs other suites):
    // it is logged above, and only bounded absolutely here, so that no client is ever starved.
    assert.ok(figures.disturbed.p95 <= 500, `p95 ${figures.disturbed.p95} ms`);
    assert.ok(floodCloses >= 1, 'the flooder was closed with 1008');
    assert.equal(slowConsumerCuts, 1, 'the stalled reader was closed with 4008 as a slow consumer');
    assert.ok(growth < 20 * 1024 * 1024, `gateway heap grew by ${(growth / 1048576).toFixed(1)} MiB`);
  });
});

function mib(bytes: number, digits: number): string {
  return (bytes / 1048576).toFixed(digits);
}
