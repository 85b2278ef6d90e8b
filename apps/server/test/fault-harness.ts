import assert from 'node:assert/strict';
import pg from 'pg';
import { WebSocket } from 'ws';
import { connect, ServerError, type TradewireClient } from '@repo/client';
import type { ChannelMessage } from '@repo/protocol';
import { waitFor } from '@repo/test-support';

/** The harness's clock: diagnostics give times as milliseconds since this module loaded. */
const EPOCH = Date.now();
const clock = (): number => Date.now() - EPOCH;

/** Faults the test caused (a kill, a restart), on the harness's clock, for the diagnostics. */
const faultMarks: string[] = [];

/** Records that the test caused `what` now: a failure's diagnostics show it among the clients' timelines. */
export function markFault(what: string): void {
  faultMarks.push(`+${clock()} ${what}`);
}

/** `[1, 2, 3, 5]` as `1-3,5`. */
function ranges(values: readonly number[]): string {
  const sorted = [...new Set(values)].sort((a, b) => a - b);
  const parts: string[] = [];
  for (let i = 0; i < sorted.length;) {
    let j = i;
    while (j + 1 < sorted.length && sorted[j + 1] === sorted[j]! + 1) j++;
    parts.push(i === j ? `${sorted[i]}` : `${sorted[i]}-${sorted[j]}`);
    i = j + 1;
  }
  return parts.join(',') || '-';
}

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
  /**
   * What happened to the connection, for a failure's diagnostics: each socket's life (`s3 new
   * :port`, `open`, `close 1006`), what the client sent to restore its session (`> sub orders
   * since=12`), the replies (`< subscribed orders rec=true seq=14`) and the order seqs each socket
   * got (on its close line), on the harness's clock. Lifecycle only, never one line per event.
   */
  readonly timeline: string[] = [];
  /** Per socket number: the order seqs that reached it (first, last, how many). */
  readonly #socketSeqs = new Map<number, { first: number; last: number; n: number }>();
  #sockets = 0;
  readonly #socketNumber = new WeakMap<WebSocket, number>();

  constructor(user: TestUser, routes: () => string[]) {
    this.user = user;
    // The socket class is constructed by the SDK, which knows nothing of this harness.
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const self = this;
    class RoutedSocket extends WebSocket {
      readonly #n: number;
      constructor(_url: string) {
        const targets = routes();
        const target =
          self.away || targets.length === 0 ? 'ws://127.0.0.1:9' : targets[self.#attempt++ % targets.length]!;
        super(target);
        this.#n = self.#sockets += 1;
        self.#socketNumber.set(this, this.#n);
        self.#note(this.#n, `new ${new URL(target).port}`);
        self.sockets.add(this);
        this.on('open', () => self.#note(this.#n, 'open'));
        this.on('message', (data: Buffer) => {
          const text = data.toString();
          if (text.includes('"subscribed"') && text.includes('"orders"')) {
            const reply = JSON.parse(text) as { seq?: number; recovered?: boolean };
            // Every orders reply must say where the stream stands (the history was readable).
            if (reply.seq === undefined) self.repliesWithoutSeq += 1;
            self.#note(this.#n, `< subscribed orders rec=${reply.recovered ?? '-'} seq=${reply.seq ?? '-'}`);
          } else if (text.includes('"auth_ok"') || text.startsWith('{"type":"error"')) {
            const reply = JSON.parse(text) as { type: string; code?: string };
            self.#note(this.#n, `< ${reply.type}${reply.code ? ` ${reply.code}` : ''}`);
          }
          if (text.includes('"order_')) {
            const message = JSON.parse(text) as { type: string; seq?: number };
            if ((message.type === 'order_filled' || message.type === 'order_rejected') && message.seq !== undefined) {
              self.wire.push(message.seq);
              const seen = self.#socketSeqs.get(this.#n);
              if (seen) {
                seen.last = message.seq;
                seen.n += 1;
              } else self.#socketSeqs.set(this.#n, { first: message.seq, last: message.seq, n: 1 });
            }
          }
        });
        this.on('close', (code: number) => {
          self.sockets.delete(this);
          const seen = self.#socketSeqs.get(this.#n);
          self.#note(
            this.#n,
            `close ${code}${seen ? ` (got ${seen.n} order events, seq ${seen.first}..${seen.last})` : ''}`,
          );
        });
      }

      override send(data: unknown, ...rest: unknown[]): void {
        if (typeof data === 'string' && (data.includes('"auth"') || data.includes('"subscribe"'))) {
          const request = JSON.parse(data) as { type: string; channel?: string; since?: number };
          if (request.type === 'auth') self.#note(this.#n, '> auth');
          else if (request.channel === 'orders') self.#note(this.#n, `> sub orders since=${request.since ?? '-'}`);
        }
        (super.send as (...args: unknown[]) => void)(data, ...rest);
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
      this.#note(this.#sockets, 'reconnected');
    });
    this.client.on('state', (state) => this.#note(this.#sockets, `state ${state}`));
    this.client.on('resync', () => {
      this.resyncs += 1;
      this.#note(this.#sockets, 'resync');
      if (this.reloadFrom) this.#reloads.push(this.reload(this.reloadFrom()));
    });
  }

  #note(socket: number, what: string): void {
    this.timeline.push(`+${clock()} s${socket} ${what}`);
  }

  /**
   * Where the client stands now and how it got there: what a failure prints for it. `missing`:
   * the seqs it should have had and did not deliver.
   */
  describe(missing: readonly number[], orderIds?: (seq: number) => string | undefined): string {
    const wire = new Set(this.wire);
    const open = [...this.sockets].map((socket) => {
      const n = this.#socketNumber.get(socket) ?? 0;
      const seen = this.#socketSeqs.get(n);
      const state = ['connecting', 'open', 'closing', 'closed'][socket.readyState];
      return `s${n} ${state}${seen ? ` got ${seen.n} order events, seq ${seen.first}..${seen.last}` : ''}`;
    });
    const ids = orderIds ? missing.map((seq) => `${seq}:${orderIds(seq) ?? '?'}`).join(' ') : '';
    const unread = ranges(missing.filter((seq) => wire.has(seq)));
    return [
      `user ${this.user.userId} (${this.user.username}): missing seqs ${ranges(missing)}` +
        (ids ? ` [seq:order id ${ids}]` : ''),
      `  delivered ${ranges(this.delivered)}; on the wire but not delivered ${unread}; state ${this.client.state}, ` +
        `sockets now [${open.join('; ')}], reconnects ${this.reconnects}, resyncs ${this.resyncs}`,
      ...this.timeline.map((line) => `  ${line}`),
    ].join('\n');
  }

  async start(): Promise<void> {
    // A gateway may answer auth "not now" (internal_error: its session store did not answer in
    // time on a loaded machine, rate_limited): an app tries again, as the client itself does
    // when it restores auth after a reconnect.
    for (let attempt = 1; ; attempt++) {
      try {
        await this.client.auth(this.user.token);
        break;
      } catch (err) {
        const transient = err instanceof ServerError && ['internal_error', 'rate_limited'].includes(err.code);
        if (!transient || attempt === 5) throw err;
        await new Promise((resolve) => setTimeout(resolve, 250 * attempt));
      }
    }
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

/** Committed seqs per user, and which order each one is (for a failure's diagnostics). */
export class CommittedOrders extends Map<number, number[]> {
  /** `userId:seq` → order id. */
  readonly orderIds = new Map<string, string>();
}

/** Every committed order's seq per user, from the database: the ground truth. */
export async function committedSeqs(databaseUrl: string, userIds: number[]): Promise<CommittedOrders> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    // bigint columns: the driver hands them over as strings.
    const { rows } = await client.query<{ id: string; user_id: string; seq: string }>(
      'SELECT id, user_id, seq FROM orders WHERE user_id = ANY($1) ORDER BY user_id, seq',
      [userIds],
    );
    const byUser = new CommittedOrders(userIds.map((id) => [id, []]));
    for (const row of rows) {
      byUser.get(Number(row.user_id))!.push(Number(row.seq));
      byUser.orderIds.set(`${row.user_id}:${row.seq}`, row.id);
    }
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
  const troubled: string[] = [];
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
    const missing = seqs.filter((s) => !got.has(s));
    const unclean =
      missing.length > 0 ||
      watcher.delivered.length !== got.size ||
      watcher.delivered.some((seq, i) => i > 0 && seq <= watcher.delivered[i - 1]!);
    if (unclean) {
      const ids = expected instanceof CommittedOrders ? expected.orderIds : null;
      troubled.push(watcher.describe(missing, ids ? (seq) => ids.get(`${watcher.user.userId}:${seq}`) : undefined));
    }
    assert.equal(watcher.repliesWithoutSeq, 0, 'every orders subscription was answered with its seq');
  }
  console.log(`[fault figures] ${JSON.stringify(figures)}`);
  if (troubled.length > 0) {
    // Only on a failure: who misses what, and what each of those clients' connections went through.
    console.log(
      [`[fault diagnostics] ${fault}, now +${clock()} ms`, ...faultMarks.map((m) => `fault ${m}`), ...troubled].join(
        '\n',
      ),
    );
  }
  return figures;
}

export function isClean(figures: Figures): boolean {
  return (
    figures.ordersCommitted > 0 &&
    figures.lost === 0 &&
    figures.duplicated === 0 &&
    figures.outOfOrder === 0 &&
    figures.delivered === figures.eventsExpected
  );
}

/**
 * The servers' side of a failure: the warnings and errors (and the worker and broker lines) each
 * process logged from line `from` on, times on the harness's clock, at most `max` lines each.
 */
export function serverLog(processes: { name: string; lines: readonly string[]; from: number }[], max = 40): string {
  const out: string[] = [];
  for (const { name, lines, from } of processes) {
    const picked: string[] = [];
    for (const line of lines.slice(from)) {
      let entry: { level?: number; time?: number; msg?: string };
      try {
        entry = JSON.parse(line) as typeof entry;
      } catch {
        picked.push(line.slice(0, 300));
        continue;
      }
      if ((entry.level ?? 0) < 40 && !/worker|broker/.test(entry.msg ?? '')) continue;
      const at = entry.time === undefined ? '?' : `+${entry.time - EPOCH}`;
      picked.push(`${at} ${line.slice(0, 300)}`);
    }
    out.push(`[server log] ${name}: ${picked.length} lines${picked.length > max ? `, the last ${max}` : ''}`);
    out.push(...picked.slice(-max).map((line) => `  ${line}`));
  }
  return out.join('\n');
}

/**
 * For every order event a watcher misses: when its outbox row was written and when the relay
 * marked it published (or that it is still unpublished), on the harness's clock. Tells a relay
 * that never published from a gateway or client that lost what was published.
 */
export async function outboxOfMissing(
  databaseUrl: string,
  watchers: WatchingClient[],
  expected: Map<number, number[]>,
): Promise<string> {
  const missing = new Map<number, Set<number>>();
  for (const watcher of watchers) {
    const got = new Set(watcher.delivered);
    const lost = (expected.get(watcher.user.userId) ?? []).filter((seq) => !got.has(seq));
    if (lost.length > 0) missing.set(watcher.user.userId, new Set(lost));
  }
  if (missing.size === 0) return '[outbox] nothing missing';
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    const { rows } = await client.query<{
      user_id: string;
      position: string;
      created: string;
      published: string | null;
    }>(
      `SELECT user_id, position, (extract(epoch from created_at) * 1000)::bigint AS created,
              (extract(epoch from published_at) * 1000)::bigint AS published
         FROM outbox WHERE kind IN ('order_filled', 'order_rejected') AND user_id = ANY($1)
        ORDER BY user_id, position`,
      [[...missing.keys()]],
    );
    const out = ['[outbox] of the missing events: seq written/published'];
    for (const [userId, seqs] of missing) {
      const parts = rows
        .filter((row) => Number(row.user_id) === userId && seqs.has(Number(row.position)))
        .map(
          (row) =>
            `${row.position} +${Number(row.created) - EPOCH}/` +
            (row.published === null ? 'unpublished' : `+${Number(row.published) - EPOCH}`),
        );
      out.push(`  user ${userId}: ${parts.join(', ') || 'no rows'}`);
    }
    return out.join('\n');
  } finally {
    await client.end();
  }
}

export function assertClean(figures: Figures): void {
  assert.ok(figures.ordersCommitted > 0, 'the burst committed orders');
  assert.equal(figures.lost, 0, 'lost');
  assert.equal(figures.duplicated, 0, 'duplicated');
  assert.equal(figures.outOfOrder, 0, 'out of order');
  assert.equal(figures.delivered, figures.eventsExpected, 'delivered = expected');
}
