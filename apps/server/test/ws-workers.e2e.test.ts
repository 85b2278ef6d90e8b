import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { get } from 'node:http';
import { connect, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import type { ServerMessage } from '@repo/protocol';
import { createTestDatabase, freePort, RedisServer, TestClient, TradewireProcess, waitFor } from '@repo/test-support';
import {
  assertClean,
  committedSeqs,
  isClean,
  json,
  markFault,
  OrderBurst,
  outboxOfMissing,
  registerUsers,
  serverLog,
  settleAndCount,
  WatchingClient,
} from './fault-harness.ts';

/**
 * `WS_WORKERS=2`: one gateway node of two worker processes sharing one port (node:cluster),
 * started through the launcher on a private Redis and a fresh PostgreSQL database, next to an
 * API + price worker process. Sockets from 127.0.0.1 are exempt from the per-address cap, so
 * only the cap's own test, from 127.0.0.2, runs into it.
 */

/** A node of three processes compiles its sources three times: on a loaded machine that takes a while. */
const STARTUP = { readyTimeoutMs: 120_000 };

/** Open sockets per address, for the whole node. */
const CAP = 4;

interface Health {
  status: string;
  broker: string;
  connections: number;
  workers: { up: number; configured: number };
  worker: { id: number; connections: number };
}

/** `GET path` on a fresh TCP connection, so the node hands it to any of its workers. */
function httpText(port: number, path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    get({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve(body));
    }).on('error', reject);
  });
}

async function health(port: number): Promise<Health> {
  return JSON.parse(await httpText(port, '/health')) as Health;
}

/** Each worker's own count of open sockets, by worker id, asking until every live worker answered. */
async function perWorker(port: number, workers: number): Promise<Map<number, number>> {
  const seen = new Map<number, number>();
  await waitFor(
    async () => {
      const report = await health(port);
      seen.set(report.worker.id, report.worker.connections);
      return seen.size >= workers;
    },
    { timeoutMs: 10_000, what: `/health answered by ${workers} workers` },
  );
  return seen;
}

/** The pids of the node's workers, from their "gateway worker ready" log lines, by worker id. */
function workerPids(node: TradewireProcess): Map<number, number> {
  const pids = new Map<number, number>();
  for (const line of node.lines) {
    if (!line.includes('"gateway worker ready"')) continue;
    const entry = JSON.parse(line) as { worker: number; pid: number };
    pids.set(entry.worker, entry.pid);
  }
  return pids;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('WS_WORKERS: one gateway node of two worker processes', () => {
  let redis: RedisServer;
  let database: Awaited<ReturnType<typeof createTestDatabase>>;
  let api: TradewireProcess;
  let node: TradewireProcess;
  let apiUrl: string;
  let wsPort: number;
  let wsUrl: string;
  const watchers: WatchingClient[] = [];
  const clients: TestClient[] = [];

  before(async () => {
    redis = await RedisServer.start();
    database = await createTestDatabase('workers');
    const env = { REDIS_URL: redis.url, DATABASE_URL: database.url };
    api = new TradewireProcess(
      ['api', 'worker'],
      { ...env, PORT: String(await freePort()), PRICE_INTERVAL_MS: '200' },
      STARTUP,
    );
    wsPort = await freePort();
    node = new TradewireProcess(
      ['ws'],
      {
        ...env,
        WS_PORT: String(wsPort),
        WS_WORKERS: '2',
        WS_MAX_CONNECTIONS_PER_ADDRESS: String(CAP),
        WS_LIMIT_EXEMPT: '127.0.0.1',
      },
      STARTUP,
    );
    const [apiReady, nodeReady] = await Promise.all([api.ready, node.ready]);
    apiUrl = apiReady.api!;
    wsUrl = nodeReady.ws!;
    assert.equal(wsUrl, `ws://127.0.0.1:${wsPort}`);
  });

  after(async () => {
    for (const w of watchers) w.close();
    for (const c of clients) c.ws.terminate();
    await Promise.allSettled([api?.stop('SIGKILL'), node?.stop('SIGKILL')]);
    await database?.drop().catch(() => {});
    await redis?.stop();
  });

  it('refuses to start more than one worker without a broker, saying why', async () => {
    for (const roles of [['ws'], []]) {
      const refused = new TradewireProcess(roles, { WS_WORKERS: '2', REDIS_URL: '', DATABASE_URL: database.url });
      const exit = await refused.exited;
      assert.equal(exit.code, 2, refused.tail());
      const message = refused.stderr.join('\n');
      assert.match(message, /WS_WORKERS=2 runs 2 gateway processes, which needs a broker \(REDIS_URL/);
      assert.match(message, /miss every order and price published elsewhere/);
    }
    const bad = new TradewireProcess(['ws'], { WS_WORKERS: 'many', REDIS_URL: redis.url, DATABASE_URL: database.url });
    assert.equal((await bad.exited).code, 2);
    assert.match(bad.stderr.join('\n'), /WS_WORKERS must be "auto" \(one per core\) or a whole number/);
  });

  it("spreads clients over both workers; prices and each user's fills reach the socket's worker", async () => {
    const users = await registerUsers(apiUrl, 3, 'spread');
    // Two sockets per user: with the node handing connections out in turn, a user's sockets
    // sit on both workers.
    const sockets: { user: (typeof users)[number]; client: TestClient }[] = [];
    for (const user of users) {
      for (let i = 0; i < 2; i++) {
        const client = await TestClient.connect(wsUrl);
        clients.push(client);
        sockets.push({ user, client });
        assert.equal((await client.request({ type: 'auth', token: user.token })).type, 'auth_ok');
        assert.equal((await client.request({ type: 'subscribe', channel: 'prices' })).type, 'subscribed');
        assert.equal((await client.request({ type: 'subscribe', channel: 'orders' })).type, 'subscribed');
      }
    }
    const counts = await perWorker(wsPort, 2);
    assert.deepEqual([...counts.values()].sort(), [3, 3], 'three sockets on each worker');
    const whole = await health(wsPort);
    assert.equal(whole.connections, 6);
    assert.deepEqual(whole.workers, { up: 2, configured: 2 });
    assert.equal(whole.status, 'ok');
    // /metrics, from whichever worker answers, counts the whole node.
    const metrics = await httpText(wsPort, '/metrics');
    assert.match(metrics, /^tradewire_ws_connections 6$/m);
    assert.match(metrics, /^tradewire_ws_broker_up 1$/m);
    assert.match(metrics, /^tradewire_ws_workers_up 2$/m);
    assert.match(metrics, /^tradewire_ws_workers_configured 2$/m);

    for (const { client } of sockets) {
      await client.waitFor((m) => m.type === 'price', 5000, 'a live price');
    }
    for (const user of users) {
      const res = await json(`${apiUrl}/orders`, {
        method: 'POST',
        token: user.token,
        body: JSON.stringify({ symbol: 'SOL', side: 'buy', size: '0.01' }),
      });
      assert.equal(res.status, 201, JSON.stringify(res.body));
    }
    for (const { user, client } of sockets) {
      const isFill = (m: ServerMessage): m is Extract<ServerMessage, { type: 'order_filled' }> =>
        m.type === 'order_filled';
      const fill = await client.waitFor(isFill, 5000, `${user.username}'s fill`);
      assert.equal(fill.userId, user.userId);
      await client.barrier();
      assert.equal(client.ofType('order_filled').length, 1, 'only its own user fill, once');
    }
    for (const { client } of sockets.splice(0)) await client.close();
  });

  it('holds the per-address cap for the whole node, not per worker', async () => {
    const from = { localAddress: '127.0.0.2' };
    const before = await perWorker(wsPort, 2);
    const held: TestClient[] = [];
    for (let i = 0; i < CAP; i++) held.push(await TestClient.connect(wsUrl, from));
    clients.push(...held);
    const during = await perWorker(wsPort, 2);
    for (const [id, count] of during) {
      assert.ok(count > (before.get(id) ?? 0), `worker ${id} holds some of the capped address's sockets`);
    }
    // Per worker, the cap would let twice as many in.
    for (let i = 0; i < 2; i++) assert.equal(await TestClient.refusedStatus(wsUrl, from), 429);
    await held[0]!.close();
    await waitFor(async () => (await health(wsPort)).connections === CAP - 1, { what: 'the slot given back' });
    held.push(await TestClient.connect(wsUrl, from));
    assert.equal(await TestClient.refusedStatus(wsUrl, from), 429);
    for (const client of held) await client.close();
  });

  it('a worker killed (SIGKILL) mid-burst: its clients resume on the other, nothing lost or duplicated', async () => {
    const registered = await registerUsers(apiUrl, 6, 'wkill');
    const made = registered.map((user) => new WatchingClient(user, () => [wsUrl]));
    watchers.push(...made);
    await Promise.all(made.map((w) => w.start()));
    const pids = workerPids(node);
    assert.equal(pids.size, 2);
    const [victimId, victimPid] = [...pids][0]!;
    const socketsBefore = await perWorker(wsPort, 2);
    assert.ok((socketsBefore.get(victimId) ?? 0) > 0, 'the worker to kill holds clients');

    const burst = new OrderBurst(
      () => apiUrl,
      made.map((c) => c.user),
    );
    await burst.reach(40);
    const logFrom = { node: node.lines.length, api: api.lines.length };
    process.kill(victimPid, 'SIGKILL');
    markFault(`worker ${victimId} (pid ${victimPid}, ${socketsBefore.get(victimId)} sockets) SIGKILL`);
    await burst.reach(burst.committedAnswers + 60);
    await burst.stop();
    const expected = await committedSeqs(
      database.url,
      made.map((c) => c.user.userId),
    );
    const figures = await settleAndCount('gateway worker SIGKILL', made, expected);
    if (!isClean(figures)) {
      console.log(await outboxOfMissing(database.url, made, expected));
      console.log(
        serverLog([
          { name: 'gateway node', lines: node.lines, from: logFrom.node },
          { name: 'api', lines: api.lines, from: logFrom.api },
        ]),
      );
    }
    assertClean(figures);
    assert.ok(
      made.some((c) => c.reconnects > 0),
      "the killed worker's clients reconnected",
    );

    // The node starts another worker in its place.
    await waitFor(async () => (await health(wsPort)).workers.up === 2, {
      timeoutMs: 30_000,
      what: 'two workers up again',
    });
    // Its log line can reach us after /health already counts it.
    await waitFor(() => workerPids(node).size === 3, { timeoutMs: 10_000, what: 'a third worker in the log' });
    assert.ok(!isAlive(victimPid));
  });

  it('a worker restarted while Redis is down fails its start, and is started again until it serves', async () => {
    const pids = [...workerPids(node)].filter(([, pid]) => isAlive(pid));
    assert.equal(pids.length, 2);
    const [victimId, victimPid] = pids[0]!;
    const logFrom = node.lines.length;
    const since = () => node.lines.slice(logFrom);
    const failedStarts = () =>
      since().filter((line) => line.includes('"tradewire failed to start"') && line.includes('"worker":'));
    // The test's own redis-server: a worker's start fails at once when Redis refuses it.
    await redis.kill();
    try {
      process.kill(victimPid, 'SIGKILL');
      markFault(`worker ${victimId} (pid ${victimPid}) SIGKILL with Redis down`);
      await waitFor(() => failedStarts().length >= 1, {
        timeoutMs: 60_000,
        what: 'a restarted worker failing its start',
      });
      assert.deepEqual((await health(wsPort)).workers, { up: 1, configured: 2 });
    } finally {
      await redis.restart();
    }
    await waitFor(async () => (await health(wsPort)).workers.up === 2, {
      timeoutMs: 90_000,
      what: 'two workers up again once Redis is back',
    });
    // One warning from the primary per worker that died starting, with its exit code.
    const failed = failedStarts().map((line) => (JSON.parse(line) as { worker: number }).worker);
    const warned = since()
      .filter((line) => line.includes('exited before it served'))
      .map((line) => JSON.parse(line) as { worker: number; code: number; served: boolean });
    assert.deepEqual(
      warned.map((w) => w.worker).sort(),
      [...failed].sort(),
      serverLog([{ name: 'gateway node', lines: node.lines, from: logFrom }]),
    );
    for (const w of warned) assert.deepEqual([w.code, w.served], [1, false]);
    assert.ok(!isAlive(victimPid));
  });

  it('workers stalled: the primary holds at most 2,048, closes what waited 3 s, then serves a new client', async () => {
    const primary = node.child.pid!;
    const openFds = () => readdirSync(`/proc/${primary}/fd`).length;
    const idleFds = openFds();
    const pids = [...workerPids(node).values()].filter(isAlive);
    assert.equal(pids.length, 2);
    const sockets: { socket: Socket; answered: boolean; closed: boolean }[] = [];
    for (const pid of pids) process.kill(pid, 'SIGSTOP');
    try {
      for (let i = 0; i < 2500; i++) {
        const entry = { socket: connect(wsPort, '127.0.0.1'), answered: false, closed: false };
        entry.socket.on('error', () => {});
        entry.socket.on('data', () => (entry.answered = true));
        entry.socket.on('close', () => (entry.closed = true));
        entry.socket.write('GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
        sockets.push(entry);
      }
      // The oldest beyond the queue's 2,048 are closed at once, unanswered, to take the newest.
      await waitFor(() => sockets.filter((s) => s.closed).length >= 2500 - 2048 - 6, {
        timeoutMs: 20_000,
        what: 'the connections beyond the queue closed',
      });
      // The queue, and at most three handoffs per worker under way (one sent, two in Node's queue).
      assert.ok(openFds() - idleFds <= 2048 + 6, `the primary holds ${openFds() - idleFds} more descriptors`);
      await sleep(3500);
    } finally {
      for (const pid of pids) process.kill(pid, 'SIGCONT');
    }
    // Everything that waited over 3 s is closed unread; only the handoffs under way are served.
    await waitFor(() => sockets.every((s) => s.closed || s.answered), {
      timeoutMs: 20_000,
      what: 'every stalled connection closed or answered',
    });
    const answered = sockets.filter((s) => s.answered).length;
    assert.ok(answered <= 6, `${answered} answered`);
    for (const s of sockets) s.socket.destroy();

    const client = await TestClient.connect(wsUrl);
    clients.push(client);
    const metrics = await httpText(wsPort, '/metrics');
    const shed = (reason: string) => {
      const line = new RegExp(`^tradewire_ws_connections_shed_total\\{reason="${reason}"\\} (\\d+)$`, 'm');
      return Number(line.exec(metrics)?.[1] ?? 0);
    };
    assert.ok(shed('queue_full') >= 2500 - 2048 - 6, `queue_full ${shed('queue_full')}`);
    assert.ok(shed('waited_too_long') >= 2048 - 6, `waited_too_long ${shed('waited_too_long')}`);
  });

  it('SIGTERM on the primary drains every worker within the deadline', async () => {
    const client = await TestClient.connect(wsUrl);
    clients.push(client);
    const pids = [...workerPids(node).values()].filter(isAlive);
    assert.equal(pids.length, 2);
    const exit = await node.stop('SIGTERM');
    // 0: every worker closed its sockets and exited before the deadline cut anything short.
    assert.equal(exit.code, 0, node.tail());
    assert.equal((await client.closed).code, 1001);
    await waitFor(() => pids.every((pid) => !isAlive(pid)), { what: 'every worker gone' });
  });
});
