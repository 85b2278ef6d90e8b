import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import type { ServerMessage } from '@repo/protocol';
import {
  REPO_ROOT,
  createTestCertificate,
  createTestDatabase,
  freePort,
  NginxServer,
  RedisServer,
  TestClient,
  TradewireProcess,
  waitFor,
} from '@repo/test-support';
import {
  assertClean,
  committedSeqs,
  json,
  OrderBurst,
  registerUsers,
  settleAndCount,
  WatchingClient,
} from './fault-harness.ts';

/**
 * The production layout of docs/deploy.md on loopback ports: nginx with docs/deploy/nginx.conf
 * (TLS on a throwaway certificate) in front of two API processes and two gateway nodes of two
 * workers each, one price worker, Redis and PostgreSQL, every process started by the launcher.
 * Browsers' traffic all goes through nginx: the Order Filled Flow, then a rolling restart of
 * the gateway nodes under a burst of orders, after which every fill must have reached its user
 * exactly once.
 */

const SITE = `${REPO_ROOT}docs/deploy/nginx.conf`;
const certificate = createTestCertificate();
// The harness's HTTP client (fetch) takes no CA of its own; this process talks to nobody but
// the loopback nginx of this test, whose certificate was made a moment ago.
process.env.NODE_TLS_REJECT_UNAUTHORIZED = '0';

/** A node of three processes compiles its sources three times: on a loaded machine that takes a while. */
const STARTUP = { readyTimeoutMs: 200_000 };

interface GatewayNode {
  port: number;
  proc: TradewireProcess | null;
}

describe('the production layout behind nginx (docs/deploy.md)', () => {
  let redis: RedisServer;
  let database: Awaited<ReturnType<typeof createTestDatabase>>;
  let nginx: NginxServer;
  let env: Record<string, string>;
  const others: TradewireProcess[] = [];
  const gateways: GatewayNode[] = [];
  const watchers: WatchingClient[] = [];
  /** `https://127.0.0.1:<nginx TLS port>` and its `wss://…/ws`. */
  let site: string;
  let siteWs: string;

  /** Starts a gateway node; `node.proc` is set at once, so `after` stops it even if it never gets ready. */
  async function startGateway(node: GatewayNode): Promise<void> {
    node.proc = new TradewireProcess(['ws'], { ...env, WS_PORT: String(node.port), WS_WORKERS: '2' }, STARTUP);
    await node.proc.ready;
  }

  before(async () => {
    redis = await RedisServer.start();
    database = await createTestDatabase('deploy');
    env = { REDIS_URL: redis.url, DATABASE_URL: database.url, TRUST_PROXY: '127.0.0.1' };
    const apiPorts = [await freePort(), await freePort()];
    // All at once: processes that open the database migrate it one after another (an advisory lock).
    for (const port of apiPorts) others.push(new TradewireProcess(['api'], { ...env, PORT: String(port) }, STARTUP));
    others.push(new TradewireProcess(['worker'], { ...env, PRICE_INTERVAL_MS: '200' }, STARTUP));
    for (let i = 0; i < 2; i++) gateways.push({ port: await freePort(), proc: null });
    await Promise.all([...gateways.map((node) => startGateway(node)), ...others.map((p) => p.ready)]);
    nginx = await NginxServer.start({
      site: readFileSync(SITE, 'utf8'),
      replace: {
        'server 10.0.0.11:3000;': `server 127.0.0.1:${apiPorts[0]};`,
        'server 10.0.0.12:3000;': `server 127.0.0.1:${apiPorts[1]};`,
        'server 10.0.0.11:3001;': `server 127.0.0.1:${gateways[0]!.port};`,
        'server 10.0.0.12:3001;': `server 127.0.0.1:${gateways[1]!.port};`,
        '/etc/ssl/tradewire/fullchain.pem': certificate.certPath,
        '/etc/ssl/tradewire/privkey.pem': certificate.keyPath,
      },
    });
    site = `https://127.0.0.1:${nginx.ports[1]}`;
    siteWs = `wss://127.0.0.1:${nginx.ports[1]}/ws`;
  });

  after(async () => {
    for (const w of watchers) w.close();
    await nginx?.stop();
    const running = [...others, ...gateways.map((g) => g.proc)].filter((p) => p !== null);
    await Promise.allSettled(running.map((p) => p.stop('SIGKILL')));
    await database?.drop().catch(() => {});
    await redis?.stop();
    certificate.remove();
  });

  it('runs the Order Filled Flow through nginx: order_filled, then portfolio', async () => {
    const username = `deploy_${Math.random().toString(36).slice(2, 8)}`;
    const credentials = JSON.stringify({ username, password: 'correct horse' });
    const registered = await json(`${site}/auth/register`, { method: 'POST', body: credentials });
    assert.equal(registered.status, 201, JSON.stringify(registered.body));
    const login = await json(`${site}/auth/login`, { method: 'POST', body: credentials });
    assert.equal(login.status, 200, JSON.stringify(login.body));
    const { token } = login.body as { token: string };

    const client = await TestClient.connect(siteWs, { ca: certificate.cert });
    try {
      assert.equal((await client.request({ type: 'auth', token })).type, 'auth_ok');
      assert.equal((await client.request({ type: 'subscribe', channel: 'orders' })).type, 'subscribed');
      assert.equal((await client.request({ type: 'subscribe', channel: 'portfolio' })).type, 'subscribed');
      // An order needs a price: the worker publishes one within a few ticks.
      await waitFor(async () => (await json(`${site}/prices`)).status === 200, { what: 'prices through nginx' });
      client.skipReceived();
      let order: Awaited<ReturnType<typeof json>> | undefined;
      await waitFor(
        async () => {
          order = await json(`${site}/orders`, {
            method: 'POST',
            token,
            body: JSON.stringify({ symbol: 'SOL', side: 'buy', size: '0.1' }),
          });
          return order.status !== 422 || (order.body as { error?: string }).error !== 'price_unavailable';
        },
        { timeoutMs: 10_000, intervalMs: 100, what: 'a price to trade at' },
      );
      assert.equal(order!.status, 201, JSON.stringify(order!.body));
      const isFill = (m: ServerMessage): m is Extract<ServerMessage, { type: 'order_filled' }> =>
        m.type === 'order_filled';
      const filled = await client.waitFor(isFill, 5000, 'order_filled');
      const portfolio = await client.waitFor(
        (m) => m.type === 'portfolio' && client.received.indexOf(m) > client.received.indexOf(filled),
        5000,
        'the portfolio after the fill',
      );
      assert.equal(filled.seq, (order!.body as { seq: number }).seq);
      assert.equal(portfolio.type, 'portfolio');
    } finally {
      await client.close();
    }
  });

  it('a rolling restart of the gateway nodes through nginx: every fill reaches its user exactly once', async () => {
    const users = await registerUsers(site, 4, 'roll');
    const clients = users.map((user) => new WatchingClient(user, () => [siteWs]));
    watchers.push(...clients);
    await Promise.all(clients.map((c) => c.start()));
    // A steady pace rather than flat out: the restarts, not the orders, are under test.
    const burst = new OrderBurst(() => site, users, { pauseMs: 60 });
    try {
      await burst.reach(30);
      for (const node of gateways) {
        const proc = node.proc!;
        // SIGTERM: the node's workers close their sockets with 1001 and exit; nginx sends the
        // clients' reconnects to the other node meanwhile.
        assert.equal((await proc.stop('SIGTERM')).code, 0, proc.tail());
        await burst.reach(burst.committedAnswers + 15);
        await startGateway(node);
        // nginx keeps a node it could not reach marked down for its fail_timeout (10 s), and
        // with both nodes just restarted one after the other a client can wait that out twice.
        await waitFor(() => clients.every((c) => c.client.state === 'open'), {
          timeoutMs: 45_000,
          what: 'every client open again',
        });
      }
      await burst.reach(burst.committedAnswers + 30);
    } finally {
      // A failure above must not leave the burst placing orders until the file times out.
      await burst.stop();
    }
    const expected = await committedSeqs(
      database.url,
      users.map((u) => u.userId),
    );
    assertClean(await settleAndCount('rolling gateway restart behind nginx', clients, expected));
    assert.ok(
      clients.every((c) => c.reconnects >= 1),
      'every client was moved by the restarts',
    );
  });
});
