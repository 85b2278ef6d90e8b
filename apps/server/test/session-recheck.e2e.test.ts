import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { connectRedisBroker, createPriceStore, type RedisBroker } from '@repo/broker';
import type { ServerMessage } from '@repo/protocol';
import {
  createTestDatabase,
  freePort,
  RedisServer,
  TcpProxy,
  TestClient,
  TradewireProcess,
  waitFor,
} from '@repo/test-support';
import { json } from './fault-harness.ts';

/**
 * A logout the gateway never hears: the gateway process reaches Redis through a TCP proxy the
 * test cuts; the API (straight on Redis) logs a session out and fills orders meanwhile; the
 * link comes back. The socket of the revoked session must get `session_revoked` within 2 s of
 * the gateway's reconnect, and no private event after the logout, neither the fills caught up
 * from history nor live ones; a socket of the user's other session gets them all.
 */

const PRIVATE = new Set(['order_filled', 'order_rejected', 'portfolio']);

describe('a logout while the gateway is cut off from Redis', () => {
  let redis: RedisServer;
  let link: TcpProxy;
  let database: Awaited<ReturnType<typeof createTestDatabase>>;
  let priceBroker: RedisBroker;
  let api: TradewireProcess;
  let gateway: TradewireProcess;
  let apiUrl: string;
  let wsUrl: string;

  before(async () => {
    redis = await RedisServer.start();
    link = await TcpProxy.start({ port: redis.port });
    database = await createTestDatabase('recheck');
    const env = { DATABASE_URL: database.url, MAX_PRICE_AGE_MS: '86400000' };
    api = new TradewireProcess(['api'], { ...env, REDIS_URL: redis.url, PORT: String(await freePort()) });
    gateway = new TradewireProcess(['ws'], {
      ...env,
      REDIS_URL: `redis://127.0.0.1:${link.port}`,
      WS_PORT: String(await freePort()),
    });
    [apiUrl, wsUrl] = await Promise.all([api.ready.then((r) => r.api!), gateway.ready.then((r) => r.ws!)]);
    priceBroker = await connectRedisBroker(redis.url);
    await createPriceStore(priceBroker).setPrice('SOL', '100');
  });

  after(async () => {
    await Promise.all([api?.stop(), gateway?.stop()]);
    await priceBroker?.close();
    await link?.stop();
    await redis?.stop();
    await database?.drop();
  });

  const brokerUp = async () =>
    ((await (await fetch(`${wsUrl.replace('ws://', 'http://')}/health`)).json()) as { broker: string }).broker === 'up';

  it('ends the revoked session within 2 s of the reconnect; nothing private reaches it after the logout', async () => {
    const password = 'correct horse battery';
    const username = `recheck_${Math.random().toString(36).slice(2, 8)}`;
    const registered = await json(`${apiUrl}/auth/register`, {
      method: 'POST',
      body: JSON.stringify({ username, password }),
    });
    assert.equal(registered.status, 201);
    const loggedOut = registered.body as { userId: number; token: string };
    const other = (await json(`${apiUrl}/auth/login`, { method: 'POST', body: JSON.stringify({ username, password }) }))
      .body as { token: string };
    const order = async (size: string) => {
      const placed = await json(`${apiUrl}/orders`, {
        method: 'POST',
        token: other.token,
        body: JSON.stringify({ symbol: 'SOL', side: 'buy', size }),
      });
      assert.equal(placed.status, 201, JSON.stringify(placed.body));
      return (placed.body as { orderId: number }).orderId;
    };

    const watch = async (token: string) => {
      const client = await TestClient.connect(wsUrl);
      assert.equal((await client.request({ type: 'auth', token })).type, 'auth_ok');
      assert.equal((await client.request({ type: 'subscribe', channel: 'orders' })).type, 'subscribed');
      assert.equal((await client.request({ type: 'subscribe', channel: 'portfolio' })).type, 'subscribed');
      return client;
    };
    const revoked = await watch(loggedOut.token);
    const control = await watch(other.token);
    const filledOn = (client: TestClient, orderId: number) =>
      client.waitFor((m) => m.type === 'order_filled' && m.orderId === orderId, 10_000);
    // Private events flow to both sockets before anything goes wrong.
    const first = await order('0.01');
    await Promise.all([filledOn(revoked, first), filledOn(control, first)]);

    link.cut();
    await waitFor(async () => !(await brokerUp()), { what: 'the gateway to lose Redis' });
    const logout = await json(`${apiUrl}/auth/logout`, { method: 'POST', token: loggedOut.token });
    assert.equal(logout.status, 204);
    await revoked.barrier();
    const atLogout = revoked.received.length;
    // A fill while the gateway is away: it will be caught up from the history after the reconnect.
    const missed = await order('0.02');

    const linesBefore = gateway.lines.length;
    link.restore();
    const ended = await revoked.waitFor((m) => m.type === 'error' && m.code === 'session_revoked', 15_000);
    const endedAt = Date.now();
    assert.ok(ended);
    // The check the gateway runs every authTimeoutMs while Redis is away may end it even before
    // the reconnect (a slow machine stretches the outage past 5 s): that is sooner, not later.
    const upLine = await waitFor(() => gateway.lines.slice(linesBefore).find((line) => line.includes('broker up')), {
      what: 'the gateway to log its reconnect',
    });
    const reconnectedAt = (JSON.parse(upLine) as { time: number }).time;
    const delay = endedAt - reconnectedAt;
    console.log(`session_revoked ${delay} ms after the gateway's reconnect`);
    assert.ok(delay <= 2000, `session_revoked ${delay} ms after the reconnect`);

    // The other session got what it missed, and gets what comes next; the revoked one neither.
    await filledOn(control, missed);
    const next = await order('0.03');
    await filledOn(control, next);
    await revoked.barrier();
    const after = revoked.received.slice(atLogout).filter((m: ServerMessage) => PRIVATE.has(m.type));
    assert.deepEqual(after, [], 'no private event after the logout');
    assert.equal(
      ((await revoked.request({ type: 'subscribe', channel: 'orders' })) as { code?: string }).code,
      'auth_required',
    );
    await Promise.all([revoked.close(), control.close()]);
  });
});
