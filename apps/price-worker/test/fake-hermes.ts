import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from '@repo/log';

export interface HermesReply {
  status?: number;
  headers?: Record<string, string>;
  /** An object is sent as JSON; a string as it is. */
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

/**
 * A local stand-in for Hermes: answers each request with the reply `next` returns, and
 * records what was asked. Started on port 0, closed with all its connections.
 */
export class FakeHermes {
  readonly requests: SeenRequest[] = [];
  next: (req: SeenRequest) => HermesReply = () => ({ status: 404 });
  readonly #server: Server;

  private constructor(server: Server) {
    this.#server = server;
  }

  static async start(): Promise<FakeHermes> {
    const server = createServer();
    const fake = new FakeHermes(server);
    server.on('request', (req: IncomingMessage, res) => {
      const url = new URL(req.url ?? '/', 'http://localhost');
      const seen: SeenRequest = {
        method: req.method ?? '',
        path: url.pathname,
        query: url.searchParams,
        authorization: req.headers.authorization,
      };
      fake.requests.push(seen);
      const reply = fake.next(seen);
      if (reply.hang) return;
      const body =
        reply.body === undefined ? '' : typeof reply.body === 'string' ? reply.body : JSON.stringify(reply.body);
      res.writeHead(reply.status ?? 200, { 'content-type': 'application/json', ...reply.headers });
      res.end(body);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return fake;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
  }

  async close(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}

export interface FeedFixture {
  id: string;
  price: string;
  expo: number;
  /** Unix seconds. */
  publishTime: number;
}

/** A `/v2/updates/price/latest?parsed=true` body as Hermes sends it (ids without 0x). */
export function hermesBody(feeds: FeedFixture[]): unknown {
  return {
    binary: { encoding: 'hex', data: ['504e4155010000000003b801000000040d00'] },
    parsed: feeds.map((f) => ({
      id: f.id.replace(/^0x/, ''),
      price: { price: f.price, conf: '1234567', expo: f.expo, publish_time: f.publishTime },
      ema_price: { price: f.price, conf: '1300000', expo: f.expo, publish_time: f.publishTime },
      metadata: { slot: 164837225, proof_available_time: f.publishTime + 1, prev_publish_time: f.publishTime - 1 },
    })),
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
