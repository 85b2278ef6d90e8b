import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { freePort, createTestDatabase, RedisServer, TradewireProcess, TestClient } from '@repo/test-support';

/**
 * The isolation property end to end, across real processes: node A runs api + ws + worker,
 * node B a second gateway, on one Redis and one PostgreSQL, with sessions that expire after
 * SESSION_TTL_SECONDS. Generated users place orders concurrently over HTTP while holding
 * sockets on both nodes; some log out midway; the others' sessions expire with their sockets
 * open. No socket may ever receive another user's order_filled / order_rejected / portfolio,
 * nor its own user's after its session was revoked or expired. Afterwards no token or
 * password may appear anywhere in either process's log output (debug level).
 */

const TTL_SECONDS = 6;
const PRIVATE = new Set(['order_filled', 'order_rejected', 'portfolio']);
type Message = Record<string, unknown> & { type: string };

async function http(url: string, init: { method?: string; token?: string; body?: unknown } = {}) {
  const headers: Record<string, string> = {};
  if (init.body !== undefined) headers['content-type'] = 'application/json';
  if (init.token) headers.authorization = `Bearer ${init.token}`;
  const res = await fetch(url, {
    method: init.method ?? 'GET',
    headers,
    ...(init.body === undefined ? {} : { body: JSON.stringify(init.body) }),
  });
  const text = await res.text();
  return { status: res.status, body: (text ? JSON.parse(text) : null) as Record<string, unknown> };
}

const userArb = fc.record({
  nodes: fc.array(fc.constantFrom<'A' | 'B'>('A', 'B'), { minLength: 1, maxLength: 3 }),
  orders: fc.array(fc.constantFrom<'buy' | 'sell'>('buy', 'sell'), { minLength: 1, maxLength: 4 }),
  logoutAfter: fc.option(fc.nat({ max: 3 }), { nil: null }),
});

describe('isolation across processes', () => {
  let redis: RedisServer;
  let database: Awaited<ReturnType<typeof createTestDatabase>>;
  let nodeA: TradewireProcess;
  let nodeB: TradewireProcess;
  let api: string;
  const ws: Record<'A' | 'B', string> = { A: '', B: '' };
  const secrets = new Set<string>();
  let run = 0;

  before(async () => {
    redis = await RedisServer.start();
    database = await createTestDatabase('tw_iso');
    const env = {
      REDIS_URL: redis.url,
      DATABASE_URL: database.url,
      SESSION_TTL_SECONDS: String(TTL_SECONDS),
      PRICE_INTERVAL_MS: '250',
      LOG_LEVEL: 'debug',
      HOST: '127.0.0.1',
    };
    nodeA = new TradewireProcess(['api', 'ws', 'worker'], {
      ...env,
      PORT: String(await freePort()),
      WS_PORT: String(await freePort()),
    });
    const readyA = await nodeA.ready;
    // B after A: A has migrated the database by then.
    nodeB = new TradewireProcess(['ws'], { ...env, PORT: String(await freePort()), WS_PORT: String(await freePort()) });
    const readyB = await nodeB.ready;
    api = readyA.api!;
    ws.A = readyA.ws!;
    ws.B = readyB.ws!;
  });
  after(async () => {
    await Promise.allSettled([nodeA?.stop(), nodeB?.stop()]);
    await database?.drop();
    await redis?.stop();
  });

  it("no socket gets another user's private events, or its own after logout or expiry; no token logged", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(userArb, { minLength: 2, maxLength: 4 }), async (users) => {
        run += 1;
        const password = `pw-${run}-${Math.random().toString(36).slice(2)}`;
        secrets.add(password);
        const sockets: { owner: number; inbox: TestClient; loggedOut: boolean }[] = [];
        try {
          // Register and connect everyone first: the sessions' TTL starts now.
          const accounts = await Promise.all(
            users.map(async (_, i) => {
              const username = `iso${run}u${i}${Date.now().toString(36)}`;
              const reg = await http(`${api}/auth/register`, { method: 'POST', body: { username, password } });
              assert.equal(reg.status, 201, JSON.stringify(reg.body));
              secrets.add(reg.body.token as string);
              return { username, userId: reg.body.userId as number, token: reg.body.token as string };
            }),
          );
          await Promise.all(
            users.flatMap((user, i) =>
              user.nodes.map(async (node) => {
                const inbox = await TestClient.connect(ws[node]);
                assert.equal((await inbox.request({ type: 'auth', token: accounts[i]!.token })).type, 'auth_ok');
                assert.equal((await inbox.request({ type: 'subscribe', channel: 'orders' })).type, 'subscribed');
                assert.equal((await inbox.request({ type: 'subscribe', channel: 'portfolio' })).type, 'subscribed');
                sockets.push({ owner: accounts[i]!.userId, inbox, loggedOut: user.logoutAfter !== null });
              }),
            ),
          );

          // Everyone trades at once; some log out midway (and log in again to go on trading).
          const placed = new Map<number, number[]>();
          await Promise.all(
            users.map(async (user, i) => {
              const account = accounts[i]!;
              let token = account.token;
              const ids: number[] = [];
              for (const [n, side] of user.orders.entries()) {
                if (user.logoutAfter === n) {
                  assert.equal((await http(`${api}/auth/logout`, { method: 'POST', token })).status, 204);
                  const login = await http(`${api}/auth/login`, {
                    method: 'POST',
                    body: { username: account.username, password },
                  });
                  assert.equal(login.status, 200, JSON.stringify(login.body));
                  token = login.body.token as string;
                  secrets.add(token);
                }
                const order = await http(`${api}/orders`, {
                  method: 'POST',
                  token,
                  body: { symbol: 'SOL', side, size: '0.01' },
                });
                assert.ok(order.status === 201 || order.status === 422, JSON.stringify(order.body));
                if (user.logoutAfter === null || n < user.logoutAfter) ids.push(order.body.orderId as number);
              }
              if (user.logoutAfter !== null && user.logoutAfter >= user.orders.length) {
                assert.equal((await http(`${api}/auth/logout`, { method: 'POST', token })).status, 204);
              }
              placed.set(account.userId, ids);
            }),
          );

          // Logged-out users' sockets hear session_revoked; the others get each of their orders.
          await Promise.all(
            sockets.map(async ({ owner, inbox, loggedOut }) => {
              if (loggedOut)
                return void (await inbox.waitFor(
                  (m) => m.type === 'error' && m.code === 'session_revoked',
                  5000,
                  'session_revoked',
                ));
              for (const orderId of placed.get(owner)!) {
                await inbox.waitFor(
                  (m) => (m.type === 'order_filled' || m.type === 'order_rejected') && m.orderId === orderId,
                  5000,
                  `order ${orderId}`,
                );
              }
            }),
          );
          // The rest expire with their sockets open.
          await Promise.all(
            sockets
              .filter((s) => !s.loggedOut)
              .map(({ inbox }) =>
                inbox.waitFor(
                  (m) => m.type === 'error' && m.code === 'session_expired',
                  (TTL_SECONDS + 5) * 1000,
                  'session_expired',
                ),
              ),
          );

          // After the end of every session, each user trades again on a fresh session. A fresh
          // control socket per node sees those events: the old sockets on that node had their
          // chance to (wrongly) receive them by then.
          await Promise.all(
            accounts.map(async (account) => {
              const login = await http(`${api}/auth/login`, {
                method: 'POST',
                body: { username: account.username, password },
              });
              assert.equal(login.status, 200, JSON.stringify(login.body));
              const token = login.body.token as string;
              secrets.add(token);
              const controls = await Promise.all(
                (['A', 'B'] as const).map(async (node) => {
                  const control = await TestClient.connect(ws[node]);
                  await control.request({ type: 'auth', token });
                  await control.request({ type: 'subscribe', channel: 'orders' });
                  return control;
                }),
              );
              const order = await http(`${api}/orders`, {
                method: 'POST',
                token,
                body: { symbol: 'SOL', side: 'buy', size: '0.01' },
              });
              await Promise.all(
                controls.map((c) =>
                  c.waitFor((m) => 'orderId' in m && m.orderId === order.body.orderId, 5000, 'control order'),
                ),
              );
              for (const control of controls) void control.close();
            }),
          );

          for (const { owner, inbox } of sockets) {
            const messages = inbox.received as Message[];
            const end = messages.findIndex(
              (m) => m.type === 'error' && (m.code === 'session_revoked' || m.code === 'session_expired'),
            );
            assert.ok(end >= 0, 'every session ended');
            messages.forEach((m, at) => {
              if (!PRIVATE.has(m.type)) return;
              assert.equal(m.userId, owner, `socket of user ${owner} got ${JSON.stringify(m)}`);
              assert.ok(at < end, `socket of user ${owner} got ${m.type} after ${String(messages[end]!.code)}`);
            });
          }
        } finally {
          for (const { inbox } of sockets) void inbox.close();
        }
      }),
      { numRuns: 3, endOnFailure: true },
    );

    // Tokens and passwords never reach a log line, at debug level, on either node.
    const logs = [...nodeA.lines, ...nodeA.stderr, ...nodeB.lines, ...nodeB.stderr].join('\n');
    assert.ok(logs.length > 0);
    for (const secret of secrets) assert.equal(logs.includes(secret), false, 'a token or password appears in the logs');
  });
});
