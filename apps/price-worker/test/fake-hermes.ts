import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from '@repo/log';

export interface HermesReply {
  status?: number;
  headers?: Record<string, string>;
  /** An object is sent as JSON; a string as plain text, like Hermes' errors. */
  body?: unknown;
  /** Never answer (for timeouts). */
  hang?: boolean;
}

export interface SeenRequest {
  method: string;
  path: string;
  query: URLSearchParams;
  authorization: string | undefined;
}

export interface FeedFixture {
  id: string;
  price: string;
  expo: number;
  /** Unix seconds. */
  publishTime: number;
  /** Default "1234567". */
  conf?: string;
}

/** One entry of `/v2/price_feeds`: `attributes.symbol` such as `Crypto.BTC/USD`. */
export interface FeedMetadata {
  id: string;
  attributes: Record<string, string>;
}

/** An open `/v2/updates/price/stream` connection, as the server side sees it. */
export class StreamConnection {
  readonly ids: Set<string>;
  readonly request: SeenRequest;
  /** Resolves when the connection is gone, whoever closed it. */
  readonly closed: Promise<void>;
  readonly #res: ServerResponse;
  #isClosed = false;

  constructor(res: ServerResponse, request: SeenRequest, ids: Set<string>) {
    this.#res = res;
    this.request = request;
    this.ids = ids;
    this.closed = new Promise((resolve) =>
      res.on('close', () => {
        this.#isClosed = true;
        resolve();
      }),
    );
  }

  get isClosed(): boolean {
    return this.#isClosed;
  }

  /** Writes raw bytes of the event stream. */
  write(text: string): void {
    if (!this.#isClosed) this.#res.write(text);
  }

  /** One update as Hermes sends it: `data:` + the JSON of `{binary, parsed}` for the asked ids. */
  send(feeds: FeedFixture[]): void {
    const asked = feeds.filter((f) => this.ids.has(normalise(f.id)));
    if (asked.length > 0) this.write(`data:${JSON.stringify(hermesBody(asked))}\n\n`);
  }

  /** Ends the stream the way Hermes does at 24 h: an `error` event, then the end of the body. */
  end(message = 'Connection timeout reached (24h)'): void {
    this.write(`event:error\ndata:${message}\n\n`);
    this.#res.end();
  }

  /** Breaks the connection without a word (a reset, a dying proxy). */
  destroy(): void {
    this.#res.socket?.destroy();
  }
}

/**
 * A local stand-in for Hermes that answers like the real server (`apps/hermes/server`, and the
 * key-checking gateway in front of it), and records what it was asked:
 * - `/v2/updates/price/latest` and `/v2/updates/price/stream` for `ids[]` among `feeds`; an
 *   unknown id is a plain-text `404 Price ids not found: <id>` for the whole request unless
 *   `ignore_invalid_price_ids=true`, which leaves it out; the stream sends `data:{…}` events
 *   only when a test calls `publish`;
 * - `/v2/price_feeds?query=&asset_type=`: `metadata` whose `symbol` contains `query`
 *   (case-insensitive) and whose `asset_type` matches;
 * - `401` without the `requiredKey` (the body echoes the token it got, to prove the source
 *   removes it from its logs), `403 Not entitled: feed 0x<id>` for a feed in `notEntitled`,
 *   `429` while `rateLimited` counts down.
 * `next` can replace the answer to any request (return undefined to fall through).
 */
export class FakeHermes {
  readonly requests: SeenRequest[] = [];
  /** Known feeds and their latest update, by normalised id. */
  readonly feeds = new Map<string, FeedFixture>();
  readonly metadata: FeedMetadata[] = [];
  /** Normalised ids the key is not entitled to. */
  readonly notEntitled = new Set<string>();
  readonly streams: StreamConnection[] = [];
  requiredKey: string | undefined;
  /** The next this many requests get 429 with `retryAfter` (seconds) when set. */
  rateLimited = 0;
  retryAfter: string | undefined;
  /** The next this many stream requests get this status (a plain-text body) instead of a stream. */
  failStreams: { count: number; status: number } = { count: 0, status: 503 };
  next: (req: SeenRequest) => HermesReply | undefined = () => undefined;
  readonly #server: Server;
  readonly #streamWaiters = new Set<(stream: StreamConnection) => void>();
  readonly #retiredKeys = new Set<string>();

  private constructor(server: Server) {
    this.#server = server;
  }

  static async start(): Promise<FakeHermes> {
    const server = createServer();
    const fake = new FakeHermes(server);
    server.on('request', (req: IncomingMessage, res: ServerResponse) => fake.#answer(req, res));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return fake;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
  }

  /** Back to an empty server: no feeds, no key, no limits, no override, streams closed. */
  reset(): void {
    this.requests.length = 0;
    this.feeds.clear();
    this.metadata.length = 0;
    this.notEntitled.clear();
    for (const stream of this.streams) stream.destroy();
    this.streams.length = 0;
    this.requiredKey = undefined;
    this.rateLimited = 0;
    this.retryAfter = undefined;
    this.failStreams = { count: 0, status: 503 };
    this.next = () => undefined;
  }

  /**
   * Requests bearing `key` are cut off unanswered and unrecorded from now on, whatever `reset()`
   * says later: a stopped client's request can still be in the server's accept queue or socket
   * buffer and be read after the next test began (it then took that test's stream waiter, 429
   * or refused stream). A test gives each client its own key and retires it when it stops.
   */
  retire(key: string): void {
    this.#retiredKeys.add(key);
  }

  /** Makes `feeds` the latest updates, and sends them to every open stream that asked for them. */
  publish(...feeds: FeedFixture[]): void {
    for (const feed of feeds) this.feeds.set(normalise(feed.id), feed);
    for (const stream of this.streams) stream.send(feeds);
  }

  /** Resolves with the next stream connection that opens (after its headers were sent). */
  nextStream(): Promise<StreamConnection> {
    return new Promise((resolve) => this.#streamWaiters.add(resolve));
  }

  openStreams(): StreamConnection[] {
    return this.streams.filter((s) => !s.isClosed);
  }

  requestsTo(path: string): SeenRequest[] {
    return this.requests.filter((r) => r.path === path);
  }

  async close(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #answer(req: IncomingMessage, res: ServerResponse): void {
    const token = /^Bearer (.+)$/i.exec(req.headers.authorization ?? '')?.[1];
    if (token !== undefined && this.#retiredKeys.has(token)) return void req.socket.destroy();
    const url = new URL(req.url ?? '/', 'http://localhost');
    const seen: SeenRequest = {
      method: req.method ?? '',
      path: url.pathname,
      query: url.searchParams,
      authorization: req.headers.authorization,
    };
    this.requests.push(seen);
    const override = this.next(seen);
    if (override) return reply(res, override);

    if (this.requiredKey !== undefined && token !== this.requiredKey) {
      return reply(res, { status: 401, body: token ? `Unauthorized: invalid access token ${token}` : 'Unauthorized' });
    }
    if (this.rateLimited > 0) {
      this.rateLimited--;
      return reply(res, {
        status: 429,
        body: 'Too Many Requests',
        ...(this.retryAfter !== undefined ? { headers: { 'retry-after': this.retryAfter } } : {}),
      });
    }
    const latest = seen.path.endsWith('/v2/updates/price/latest');
    const stream = seen.path.endsWith('/v2/updates/price/stream');
    if (latest || stream) {
      const ids = seen.query.getAll('ids[]').map(normalise);
      const refused = ids.find((id) => this.notEntitled.has(id));
      if (refused) return reply(res, { status: 403, body: `Not entitled: feed 0x${refused}` });
      const unknown = ids.filter((id) => !this.feeds.has(id));
      if (unknown.length > 0 && seen.query.get('ignore_invalid_price_ids') !== 'true') {
        return reply(res, { status: 404, body: `Price ids not found: ${unknown.join(', ')}` });
      }
      const known = ids.filter((id) => this.feeds.has(id));
      if (latest) return reply(res, { body: hermesBody(known.map((id) => this.feeds.get(id)!)) });
      if (this.failStreams.count > 0) {
        this.failStreams.count--;
        return reply(res, { status: this.failStreams.status, body: 'stream refused by the test' });
      }
      return this.#openStream(res, seen, new Set(known));
    }
    if (seen.path.endsWith('/v2/price_feeds')) {
      const query = (seen.query.get('query') ?? '').toLowerCase();
      const assetType = seen.query.get('asset_type')?.toLowerCase();
      return reply(res, {
        body: this.metadata.filter(
          (m) =>
            (m.attributes.symbol ?? '').toLowerCase().includes(query) &&
            (assetType === undefined || (m.attributes.asset_type ?? '').toLowerCase() === assetType),
        ),
      });
    }
    reply(res, { status: 404, body: '' });
  }

  #openStream(res: ServerResponse, seen: SeenRequest, ids: Set<string>): void {
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    res.flushHeaders();
    const connection = new StreamConnection(res, seen, ids);
    this.streams.push(connection);
    for (const waiter of this.#streamWaiters) waiter(connection);
    this.#streamWaiters.clear();
  }
}

function reply(res: ServerResponse, reply: HermesReply): void {
  if (reply.hang) return;
  const json = reply.body !== undefined && typeof reply.body !== 'string';
  const body = typeof reply.body === 'string' ? reply.body : reply.body === undefined ? '' : JSON.stringify(reply.body);
  res.writeHead(reply.status ?? 200, {
    // Hermes (axum) answers errors as `(StatusCode, String)`: plain text.
    'content-type': json ? 'application/json' : 'text/plain; charset=utf-8',
    ...reply.headers,
  });
  res.end(body);
}

function normalise(id: string): string {
  return id.toLowerCase().replace(/^0x/, '');
}

/** A `/v2/updates/price/latest?parsed=true` body as Hermes sends it (ids without 0x). */
export function hermesBody(feeds: FeedFixture[]): unknown {
  return {
    binary: { encoding: 'hex', data: ['504e4155010000000003b801000000040d00'] },
    parsed: feeds.map((f) => ({
      id: normalise(f.id),
      price: { price: f.price, conf: f.conf ?? '1234567', expo: f.expo, publish_time: f.publishTime },
      ema_price: { price: f.price, conf: '1300000', expo: f.expo, publish_time: f.publishTime },
      metadata: { slot: 164837225, proof_available_time: f.publishTime + 1, prev_publish_time: f.publishTime - 1 },
    })),
  };
}

/** `/v2/price_feeds` entries as Hermes lists them. */
export function cryptoFeed(symbol: string, id: string): FeedMetadata {
  const [base = '', quote = ''] = symbol.replace(/^Crypto\./, '').split('/');
  return {
    id: normalise(id),
    attributes: {
      asset_type: 'Crypto',
      base,
      description: `${base} / ${quote}`,
      generic_symbol: `${base}${quote}`,
      quote_currency: quote,
      symbol,
    },
  };
}

export interface LogLine {
  level: 'debug' | 'info' | 'warn' | 'error';
  data: Record<string, unknown>;
  msg: string;
}

/** A Logger that keeps its lines, so tests can assert what was reported. */
export function capturingLogger(): { logger: Logger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const at =
    (level: LogLine['level']) =>
    (data: unknown, msg?: string): void => {
      if (typeof data === 'string') lines.push({ level, data: {}, msg: data });
      else lines.push({ level, data: (data ?? {}) as Record<string, unknown>, msg: msg ?? '' });
    };
  const logger = { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error'), child: () => logger };
  return { logger: logger as unknown as Logger, lines };
}
