import assert from 'node:assert/strict';
import pg from 'pg';
import { WebSocket } from 'ws';
import { connect, type TradewireClient } from '@repo/client';
import type { ChannelMessage } from '@repo/protocol';
import { waitFor } from '@repo/test-support';

/**
 * What the delivery fault tests share: users placing orders through the real API, clients built
 * with @repo/client on `ws` watching their orders, and the figures (expected from the
 * database, delivered, lost, duplicated, out of order) each test prints and asserts.
 */

/** A JSON request; `T` is what the test expects the body to be (unchecked, as a test reads it). */
export async function json<T = unknown>(
  url: string,
  init: RequestInit & { token?: string; timeoutMs?: number } = {},
): Promise<{ status: number; body: T }> {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (init.token) headers.authorization = `Bearer ${init.token}`;
  const res = await fetch(url, { ...init, headers, signal: AbortSignal.timeout(init.timeoutMs ?? 5000) });
  const text = await res.text();
  return { status: res.status, body: (text ? JSON.parse(text) : null) as T };
}

interface OrdersPage {
  seq: number;
  orders: { seq: number }[];
  nextBefore: number | null;
}

export interface TestUser {
  userId: number;
  token: string;
  username: string;
}

export async function registerUsers(api: string, count: number, prefix: string): Promise<TestUser[]> {
  const users: TestUser[] = [];
  for (let i = 0; i < count; i++) {
    const username = `${prefix}${i}_${Math.random().toString(36).slice(2, 8)}`;
    const reg = await json<{ userId: number; token: string }>(`${api}/auth/register`, {
      method: 'POST',
      body: JSON.stringify({ username, password: 'correct horse' }),
    });
    assert.equal(reg.status, 201, JSON.stringify(reg.body));
    users.push({ userId: reg.body.userId, token: reg.body.token, username });
  }
  return users;
}

/**
 * One watching client: a @repo/client whose sockets go where `route()` says (the live gateway
 * nodes, in turn), recording what its `orders` handler got and what reached the wire.
 */
export class WatchingClient {
  readonly user: TestUser;
  readonly client: TradewireClient;
  /** `seq`s in the order the handler received them (after the client's own duplicate drop). */
  readonly delivered: number[] = [];
  /** `seq`s of order events as they arrived on the wire (before the client's drop). */
  readonly wire: number[] = [];
  readonly sockets = new Set<WebSocket>();
  resyncs = 0;
  /** `subscribed` replies on `orders` that carried no `seq` (history unreadable). */
  repliesWithoutSeq = 0;
  /** Reconnects that finished restoring auth and subscriptions. */
  reconnects = 0;
  /** `seq`s of the orders the last REST reload (after a `resync`) listed. */
  reloaded: number[] = [];
  /** The top-level `seq` GET /orders answered in that reload. */
  reloadedSeq = 0;
  /** Set to reload over REST on `resync`, as the web app does. */
  reloadFrom: (() => string) | null = null;
  #reloads: Promise<void>[] = [];
  /** While true, new sockets go to a closed port: the client is "away". */
  away = false;
  #attempt = 0;

  constructor(user: TestUser, routes: () => string[]) {
    this.user = user;
    // The socket class is constructed by the SDK, which knows nothing of this harness.
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const self = this;
    class RoutedSocket extends WebSocket {
      constructor(_url: string) {
        const targets = routes();
        super(self.away || targets.length === 0 ? 'ws://127.0.0.1:9' : targets[self.#attempt++ % targets.length]!);
        self.sockets.add(this);
        this.on('message', (data: Buffer) => {
          const text = data.toString();
          if (text.includes('"subscribed"') && text.includes('"orders"')) {
            // Every orders reply must say where the stream stands (the history was readable).
            if ((JSON.parse(text) as { seq?: number }).seq === undefined) self.repliesWithoutSeq += 1;
          }
          if (text.includes('"order_')) {
            const message = JSON.parse(text) as { type: string; seq?: number };
            if ((message.type === 'order_filled' || message.type === 'order_rejected') && message.seq !== undefined)
              self.wire.push(message.seq);
          }
        });
        this.on('close', () => self.sockets.delete(this));
      }
    }
    this.client = connect('ws://unused', {
      WebSocket: RoutedSocket,
      reconnect: { baseDelayMs: 50, maxDelayMs: 300 },
      requestTimeoutMs: 5000,
      logger: { warn: () => {} },
    });
    this.client.on('reconnected', () => {
      this.reconnects += 1;
    });
    this.client.on('resync', () => {
      this.resyncs += 1;
      if (this.reloadFrom) this.#reloads.push(this.reload(this.reloadFrom()));
    });
  }

  async start(): Promise<void> {
    await this.client.auth(this.user.token);
    await this.client.subscribe('orders', (event: ChannelMessage<'orders'>) => {
      if (event.seq !== undefined) this.delivered.push(event.seq);
    });
  }

  /** Reloads every order over REST (GET /orders, page by page), as an app does on `resync`. */
  async reload(api: string): Promise<void> {
    const seqs: number[] = [];
    let before: number | null = null;
    let top = 0;
    for (;;) {
      const query = before === null ? '' : `&before=${before}`;
      const page: { status: number; body: OrdersPage } = await json<OrdersPage>(`${api}/orders?limit=100${query}`, {
        token: this.user.token,
      });
      assert.equal(page.status, 200);
      if (before === null) top = page.body.seq;
      for (const order of page.body.orders) seqs.push(order.seq);
      before = page.body.nextBefore;
      if (before === null) break;
    }
    this.reloaded = seqs.sort((a, b) => a - b);
    this.reloadedSeq = top;
  }

  /** Resolves when the reloads started by `resync` are done. */
  async reloadsDone(): Promise<void> {
    await Promise.all(this.#reloads);
  }

  /** Destroys the current socket without a close handshake (a network cut). */
  cut(): void {
    for (const socket of this.sockets) socket.terminate();
  }

  close(): void {
    this.client.close();
  }
}

/** Places orders for every user, each user one at a time, until `stop()`; counts answers. */
export class OrderBurst {
  committedAnswers = 0;
  /** The `seq` of each answered order, per user. */
  readonly answered = new Map<number, number[]>();
  failedRequests = 0;
  #running = true;
  readonly #loops: Promise<void>[];

  constructor(api: () => string, users: TestUser[], { pauseMs = 15 } = {}) {
    this.#loops = users.map(async (user) => {
      while (this.#running) {
        const side = Math.random() < 0.7 ? 'buy' : 'sell';
        try {
          const res = await json<{ seq: number }>(`${api()}/orders`, {
            method: 'POST',
            token: user.token,
            body: JSON.stringify({ symbol: 'SOL', side, size: '0.01' }),
          });
          if (res.status === 201 || res.status === 422) {
            this.committedAnswers += 1;
            const seqs = this.answered.get(user.userId) ?? [];
            seqs.push(res.body.seq);
            this.answered.set(user.userId, seqs);
          } else this.failedRequests += 1;
        } catch {
          // The API is down (a fault test killed it): the order may or may not have committed.
          this.failedRequests += 1;
        }
        // Load generation pace, not a wait for an event.
        await new Promise((r) => setTimeout(r, pauseMs));
      }
    });
  }

  /** Resolves once at least `n` orders were answered as committed. */
  async reach(n: number, timeoutMs = 20_000): Promise<void> {
    await waitFor(() => this.committedAnswers >= n, { timeoutMs, intervalMs: 20, what: `${n} committed orders` });
  }

  async stop(): Promise<void> {
    this.#running = false;
    await Promise.all(this.#loops);
  }
}

export interface Figures {
  fault: string;
  ordersCommitted: number;
  eventsExpected: number;
  delivered: number;
  lost: number;
  duplicated: number;
  outOfOrder: number;
  wireDuplicates: number;
  resyncs: number;
}

/** Every committed order's seq per user, from the database: the ground truth. */
export async function committedSeqs(databaseUrl: string, userIds: number[]): Promise<Map<number, number[]>> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    // bigint columns: the driver hands them over as strings.
    const { rows } = await client.query<{ user_id: string; seq: string }>(
      'SELECT user_id, seq FROM orders WHERE user_id = ANY($1) ORDER BY user_id, seq',
      [userIds],
    );
    const byUser = new Map<number, number[]>(userIds.map((id) => [id, []]));
    for (const row of rows) byUser.get(Number(row.user_id))!.push(Number(row.seq));
    return byUser;
  } finally {
    await client.end();
  }
}

/**
 * Waits until every watcher has its user's last committed seq (or the timeout), then counts.
 * `expected` is per user, read after the burst stopped.
 */
export async function settleAndCount(
  fault: string,
  watchers: WatchingClient[],
  expected: Map<number, number[]>,
  { timeoutMs = 15_000 } = {},
): Promise<Figures> {
  await waitFor(
    () =>
      watchers.every((w) => {
        const seqs = expected.get(w.user.userId) ?? [];
        const last = seqs[seqs.length - 1] ?? 0;
        return last === 0 || w.delivered.includes(last);
      }),
    { timeoutMs, intervalMs: 25, what: 'every client to receive its last committed order event' },
  ).catch(() => {}); // the figures below say what is missing
  const figures: Figures = {
    fault,
    ordersCommitted: 0,
    eventsExpected: 0,
    delivered: 0,
    lost: 0,
    duplicated: 0,
    outOfOrder: 0,
    wireDuplicates: 0,
    resyncs: 0,
  };
  const counted = new Set<number>();
  for (const watcher of watchers) {
    const seqs = expected.get(watcher.user.userId) ?? [];
    if (!counted.has(watcher.user.userId)) {
      counted.add(watcher.user.userId);
      figures.ordersCommitted += seqs.length;
    }
    figures.eventsExpected += seqs.length;
    const got = new Set(watcher.delivered);
    figures.delivered += watcher.delivered.length;
    figures.lost += seqs.filter((s) => !got.has(s)).length;
    figures.duplicated += watcher.delivered.length - got.size;
    for (let i = 1; i < watcher.delivered.length; i++)
      if (watcher.delivered[i]! <= watcher.delivered[i - 1]!) figures.outOfOrder += 1;
    figures.wireDuplicates += watcher.wire.length - new Set(watcher.wire).size;
    figures.resyncs += watcher.resyncs;
    assert.equal(watcher.repliesWithoutSeq, 0, 'every orders subscription was answered with its seq');
  }
  console.log(`[fault figures] ${JSON.stringify(figures)}`);
  return figures;
}

export function assertClean(figures: Figures): void {
  assert.ok(figures.ordersCommitted > 0, 'the burst committed orders');
  assert.equal(figures.lost, 0, 'lost');
  assert.equal(figures.duplicated, 0, 'duplicated');
  assert.equal(figures.outOfOrder, 0, 'out of order');
  assert.equal(figures.delivered, figures.eventsExpected, 'delivered = expected');
}
