import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { freePort, createTestDatabase, RedisServer, TradewireProcess, waitFor } from '@repo/test-support';
import {
  assertClean,
  committedSeqs,
  OrderBurst,
  registerUsers,
  settleAndCount,
  WatchingClient,
} from './fault-harness.ts';

/**
 * Delivery through faults on a real cluster: one API (+ price worker) process and two gateway
 * processes on a private Redis and a fresh PostgreSQL database. Each test causes one fault
 * during a burst of orders from several users, then compares what every client's `orders`
 * handler got with the orders committed in the database, and prints the figures.
 */

interface Node {
  port: number;
  proc: TradewireProcess | null;
}

describe('delivery through faults', () => {
  let redis: RedisServer;
  let database: Awaited<ReturnType<typeof createTestDatabase>>;
  let env: Record<string, string>;
  let api: TradewireProcess | null = null;
  let apiUrl: string;
  const gateways: Node[] = [];
  const watchers: WatchingClient[] = [];

  const liveGateways = () => gateways.filter((g) => g.proc !== null).map((g) => `ws://127.0.0.1:${g.port}`);

  async function startApi(): Promise<void> {
    api = new TradewireProcess(['api', 'worker'], env);
    apiUrl = (await api.ready).api!;
  }

  async function startGatewayNode(node: Node): Promise<void> {
    const proc = new TradewireProcess(['ws'], { ...env, WS_PORT: String(node.port) });
    await proc.ready;
    node.proc = proc;
  }

  async function stopGatewayNode(node: Node, signal: NodeJS.Signals): Promise<void> {
    const proc = node.proc;
    node.proc = null; // no new client goes there from now on
    await proc?.stop(signal);
  }

  async function watch(prefix: string, users: number): Promise<WatchingClient[]> {
    const registered = await registerUsers(apiUrl, users, prefix);
    const made = registered.map((user) => new WatchingClient(user, liveGateways));
    watchers.push(...made);
    await Promise.all(made.map((w) => w.start()));
    return made;
  }

  async function figuresFor(fault: string, clients: WatchingClient[]) {
    const expected = await committedSeqs(
      database.url,
      clients.map((c) => c.user.userId),
    );
    return settleAndCount(fault, clients, expected);
  }

  before(async () => {
    redis = await RedisServer.start();
    database = await createTestDatabase('faults');
    env = {
      PORT: String(await freePort()),
      REDIS_URL: redis.url,
      DATABASE_URL: database.url,
      PRICE_INTERVAL_MS: '200',
    };
    await startApi();
    for (let i = 0; i < 2; i++) gateways.push({ port: await freePort(), proc: null });
    await Promise.all(gateways.map((g) => startGatewayNode(g)));
  });

  after(async () => {
    for (const w of watchers) w.close();
    await Promise.allSettled([api?.stop('SIGKILL'), ...gateways.map((g) => g.proc?.stop('SIGKILL'))]);
    await database?.drop().catch(() => {});
    await redis?.stop();
  });

  it('Redis killed and restarted empty during a burst from several users', async () => {
    const clients = await watch('redis', 4);
    const burst = new OrderBurst(
      () => apiUrl,
      clients.map((c) => c.user),
    );
    await burst.reach(40);
    await redis.kill();
    const atKill = burst.committedAnswers;
    // Orders keep committing while Redis is gone: the request never waits on the broker.
    await burst.reach(atKill + 20);
    await redis.restart();
    await burst.reach(burst.committedAnswers + 40);
    await burst.stop();
    assertClean(await figuresFor('redis restarted empty', clients));
  });

  it('a gateway node killed (SIGKILL) while its clients receive events: they recover on another node', async () => {
    const clients = await watch('gwkill', 4);
    const burst = new OrderBurst(
      () => apiUrl,
      clients.map((c) => c.user),
    );
    await burst.reach(40);
    await stopGatewayNode(gateways[0]!, 'SIGKILL');
    await burst.reach(burst.committedAnswers + 60);
    await burst.stop();
    assertClean(await figuresFor('gateway SIGKILL', clients));
    assert.ok(
      clients.every((c) => c.reconnects > 0),
      'every client lost its node and came back on the other',
    );
    await startGatewayNode(gateways[0]!);
  });

  it('the API killed (SIGKILL) mid-burst and restarted: every committed order reaches its user', async () => {
    const clients = await watch('apikill', 4);
    const burst = new OrderBurst(
      () => apiUrl,
      clients.map((c) => c.user),
    );
    await burst.reach(40);
    await api!.stop('SIGKILL');
    await startApi();
    await burst.reach(burst.committedAnswers + 40);
    await burst.stop();
    assertClean(await figuresFor('api SIGKILL + restart', clients));
  });

  it('client sockets destroyed at random moments during a burst', async () => {
    const clients = await watch('cut', 4);
    const burst = new OrderBurst(
      () => apiUrl,
      clients.map((c) => c.user),
    );
    let cuts = 0;
    for (let target = 20; target <= 140; target += 15) {
      await burst.reach(target);
      clients[Math.floor(Math.random() * clients.length)]!.cut();
      cuts += 1;
    }
    await burst.stop();
    console.log(`[fault figures] sockets cut: ${cuts}`);
    assertClean(await figuresFor('client sockets destroyed', clients));
    assert.ok(clients.some((c) => c.reconnects > 0));
  });

  it('a rolling restart of every gateway node (SIGTERM, one after another) under load', async () => {
    const clients = await watch('rolling', 4);
    const burst = new OrderBurst(
      () => apiUrl,
      clients.map((c) => c.user),
    );
    await burst.reach(30);
    for (const node of gateways) {
      await stopGatewayNode(node, 'SIGTERM');
      await burst.reach(burst.committedAnswers + 15);
      await startGatewayNode(node);
      await waitFor(() => clients.every((c) => c.client.state === 'open'), {
        timeoutMs: 10_000,
        what: 'clients open again',
      });
    }
    await burst.reach(burst.committedAnswers + 30);
    await burst.stop();
    assertClean(await figuresFor('rolling gateway restart', clients));
    assert.ok(
      clients.every((c) => c.reconnects >= 1),
      'every client was moved by the restarts',
    );
  });
});
