import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { AddressedRequest, MetricsAccess, MetricsRequest } from '@repo/http-access';
import type { Logger } from '@repo/log';

/** Body of `GET /health`. */
export interface HealthReport {
  status: 'ok' | 'degraded';
  broker: 'up' | 'down';
  /** Open sockets of the node (every worker's, with `WS_WORKERS`). */
  connections: number;
  /** With `WS_WORKERS`: the workers serving now, and how many the node should have. */
  workers?: { up: number; configured: number };
  /** With `WS_WORKERS`: the worker that answered (its cluster id) and its own open sockets. */
  worker?: { id: number; connections: number };
}

/** A `/metrics` body: this process's registry, or the node's aggregate. */
export interface MetricsText {
  contentType: string;
  text: string;
}

/**
 * The gateway's plain HTTP side: `GET /health`, `GET /metrics`, 404 for everything else.
 * `/metrics` follows the API's rule (`createMetricsAccess` of @repo/http-access): loopback
 * clients only, or the bearer of `METRICS_TOKEN`; behind a trusted proxy the client is the
 * forwarded one, so a local proxy does not make the internet loopback. Errors are logged and
 * answered with a bare 500 that leaks nothing.
 */
export function createHttpHandler(deps: {
  health: () => HealthReport | Promise<HealthReport>;
  metrics: () => Promise<MetricsText>;
  logger: Logger;
  metricsAccess: (request: MetricsRequest) => MetricsAccess;
  clientAddress: (request: AddressedRequest) => string | undefined;
}): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    const path = pathOf(req.url);
    const route = path === '/health' || path === '/metrics' ? path : null;
    if (route === null) return sendJson(res, 404, { error: 'not_found' });
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('Allow', 'GET, HEAD');
      return sendJson(res, 405, { error: 'method_not_allowed' });
    }
    if (route === '/health') {
      const report = deps.health();
      if (!(report instanceof Promise)) return sendJson(res, 200, report);
      report.then(
        (body) => sendJson(res, 200, body),
        (err: unknown) => {
          deps.logger.error({ err }, 'health report failed');
          sendJson(res, 500, { error: 'internal_error' });
        },
      );
      return;
    }
    const access = deps.metricsAccess({
      clientAddress: deps.clientAddress(req),
      authorization: req.headers.authorization,
    });
    if (!access.allowed) {
      if (access.status === 401) res.setHeader('WWW-Authenticate', access.headers['WWW-Authenticate']);
      return sendJson(res, access.status, { error: access.code });
    }
    deps.metrics().then(
      ({ contentType, text }) => {
        res.writeHead(200, { 'Content-Type': contentType, 'Cache-Control': 'no-store' });
        res.end(text);
      },
      (err: unknown) => {
        deps.logger.error({ err }, 'metrics collection failed');
        sendJson(res, 500, { error: 'internal_error' });
      },
    );
  };
}

function pathOf(url: string | undefined): string {
  const raw = url ?? '/';
  const end = raw.search(/[?#]/);
  return end === -1 ? raw : raw.slice(0, end);
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': Buffer.byteLength(text),
    'Cache-Control': 'no-store',
  });
  res.end(text);
}

const STATUS_TEXT: Record<number, string> = {
  403: 'Forbidden',
  429: 'Too Many Requests',
  503: 'Service Unavailable',
};

/**
 * Answers an upgrade request with a plain HTTP error and closes the socket: the browser's
 * WebSocket then fails to open with that status. `end()` rather than `destroy()` lets the
 * response reach the client before the FIN; the destroy once it is written (as `ws` does for
 * its own refusals) closes the socket even when the client never sends its FIN: an upgrade
 * socket is outside the HTTP server's timeouts, and a half-closed one would hold its
 * descriptor for good and keep the server's close() waiting.
 */
export function rejectUpgrade(socket: Duplex, status: 403 | 429 | 503, message: string, retryAfterSeconds = 1): void {
  const body = JSON.stringify({ error: message });
  const headers = [
    `HTTP/1.1 ${status} ${STATUS_TEXT[status]}`,
    'Connection: close',
    'Content-Type: application/json; charset=utf-8',
    `Content-Length: ${Buffer.byteLength(body)}`,
    ...(status === 403 ? [] : [`Retry-After: ${retryAfterSeconds}`]),
  ];
  socket.once('finish', () => socket.destroy());
  socket.end(`${headers.join('\r\n')}\r\n\r\n${body}`);
}
