import { existsSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import { join, resolve } from 'node:path';
import cors from '@fastify/cors';
import fastifyStatic from '@fastify/static';
import { fastify, type FastifyInstance } from 'fastify';
import { Registry } from 'prom-client';
import { createMetricsAccess } from '@repo/http-access';
import { createPriceStore, type Broker, type ChannelLayout } from '@repo/broker';
import type { RedisClient, RedisClusterClient } from '@repo/redis';
import { DEFAULT_PASSWORD_HASH, createSessionStore, dec, type Database, type PasswordHashParams } from '@repo/db';
import { silentLogger, type Logger } from '@repo/log';
import { createBearerAuth } from './bearer-auth.ts';
import type { ApiContext, ApiSettings } from './context.ts';
import { createErrorHandler, createFrameworkErrorHandler, errorBody } from './errors.ts';
import { createApiMetrics } from './metrics.ts';
import { Housekeeping } from './housekeeping.ts';
import { OutboxRelay, type OutboxRelayOptions } from './outbox-relay.ts';
import { PasswordHashSlots, type PasswordHashSlotOptions } from './password-hash-slots.ts';
import { createPriceReader } from './price-reader.ts';
import { RateLimits, type RateLimitOptions } from './rate-limits.ts';
import { createSecurityHeaders, registerSecurityHeaders } from './security-headers.ts';
import { registerAccountRoutes } from './routes/account.ts';
import { registerAuthRoutes } from './routes/auth.ts';
import { registerMarketRoutes } from './routes/market.ts';
import { registerOrderRoutes } from './routes/orders.ts';
import { registerSystemRoutes } from './routes/system.ts';

export interface ApiOptions {
  db: Database;
  broker: Broker;
  /** Channel of each published event (default the design's names; partitioned in Redis Cluster mode). */
  channelLayout?: ChannelLayout;
  logger?: Logger;
  /** Tradable base assets, each traded against USD (default `['SOL']`). */
  symbols?: string[];
  /** Fee rate charged in USD on every fill (default "0.0001"). */
  feeRate?: string;
  /** USD balance of a new user (default "10000"). */
  startingBalanceUsd?: string;
  /** Largest order size accepted (default "1000000000"). */
  maxOrderSize?: string;
  /** Session lifetime (default 7 days). */
  sessionTtlMs?: number;
  /**
   * Oldest price an order may fill at, by its timestamp (default 10000 ms): older, the order
   * is rejected with `price_stale`, and `GET /prices` marks the price `stale`.
   */
  maxPriceAgeMs?: number;
  /** Directory of the built web app, served at / with SPA fallback when set and present. */
  staticDir?: string | null;
  /** Answered on GET /config; the web page finds the WebSocket gateway with it. */
  publicConfig?: { wsUrl: string | null; wsPort: number };
  /**
   * `GET /metrics` then needs `Authorization: Bearer <token>` from every client; unset, it
   * answers loopback clients only (403 for others). 16-256 visible ASCII characters.
   */
  metricsToken?: string;
  /** Origins allowed by CORS (default none: same-origin only). */
  allowedOrigins?: string[];
  /** Prometheus registry to register the API's metrics on (default: a new one). */
  registry?: Registry;
  /** Login, registration and order limits (defaults in `DEFAULT_RATE_LIMITS`). */
  rateLimits?: RateLimitOptions;
  /**
   * A connected node-redis client or cluster client (with an `error` listener) for the
   * rate-limit counters, so that the limits hold across API processes; unset, they are counted
   * in this process. Each counter is one key, so a Redis Cluster serves them as well. Owned by
   * the caller.
   */
  rateLimitRedis?: RedisClient | RedisClusterClient;
  /**
   * argon2id cost of new password hashes (default OWASP's: 19 MiB, 2 passes, 1 lane; tests
   * pass a cheap one). Hashes at other costs still verify and are replaced at the next login.
   */
  passwordHash?: Partial<PasswordHashParams>;
  /**
   * Password hashes in flight at once (default 8), waiting for a slot (default 32) and how long
   * (default 1000 ms); past them a login or registration gets 429 `rate_limited`.
   */
  passwordHashing?: Pick<PasswordHashSlotOptions, 'maxInFlight' | 'maxWaiting' | 'maxWaitMs'>;
  /** Largest request body in bytes (default 16 KiB). */
  bodyLimit?: number;
  /** Fastify `trustProxy`: set when behind a reverse proxy so throttling sees client addresses (default false). */
  trustProxy?: boolean | string | string[];
  /** Deadline for reading the latest price from the broker (default 250 ms). */
  priceReadTimeoutMs?: number;
  /** How often expired sessions and day-old idempotency keys are deleted (default 10 min). */
  housekeepingIntervalMs?: number;
  relay?: Pick<
    OutboxRelayOptions,
    | 'pollIntervalMs'
    | 'sweepGraceMs'
    | 'batchSize'
    | 'retryBaseMs'
    | 'retryMaxMs'
    | 'retentionMs'
    | 'retentionEvents'
    | 'pruneIntervalMs'
    | 'pruneBatchSize'
  >;
  now?: () => Date;
}

export interface Api {
  app: FastifyInstance;
  relay: OutboxRelay;
  /** Deletes expired sessions and idempotency keys (every `housekeepingIntervalMs`). */
  housekeeping: Housekeeping;
  /** The bound on password hashes in flight (`passwordHashing`). */
  passwordHashes: PasswordHashSlots;
  /** The metrics registry (the one passed in, or the API's own). */
  registry: Registry;
  /** Stops the relay and closes the HTTP server. The database and broker belong to the caller. */
  close(): Promise<void>;
}

const QUOTE_ASSET = 'USD';
const SYMBOL_PATTERN = /^[A-Z0-9]{1,16}$/;
const DECIMAL_PATTERN = /^(?:0|[1-9]\d*)(?:\.\d+)?$/;

/**
 * Builds the trading API (Fastify) and its outbox relay, which starts at once. The caller
 * listens (`app.listen`) or injects requests (`app.inject`, tests) and owns `db` and `broker`.
 * Options are validated here; a bad one throws a `TypeError` that names it.
 */
export function createApi(options: ApiOptions): Api {
  const logger = options.logger ?? silentLogger;
  const settings = resolveSettings(options);
  const now = options.now ?? (() => new Date());
  const metricsAccess = createMetricsAccess(options.metricsToken);
  const registry = options.registry ?? new Registry();
  const metrics = createApiMetrics(registry, () => options.db.outbox.backlog());
  const relay = new OutboxRelay({
    outbox: options.db.outbox,
    broker: options.broker,
    ...(options.channelLayout ? { layout: options.channelLayout } : {}),
    logger: logger.child({ component: 'outbox-relay' }),
    metrics,
    now: options.now,
    ...options.relay,
  });
  const housekeeping = new Housekeeping({
    db: options.db,
    logger: logger.child({ component: 'housekeeping' }),
    intervalMs: options.housekeepingIntervalMs,
    now,
  });
  const passwordHashes = new PasswordHashSlots({
    ...options.passwordHashing,
    onInFlight: (inFlight) => metrics.passwordHashesInFlight.set(inFlight),
    onRefused: () => metrics.passwordHashesRefused.inc(),
  });
  const ctx: ApiContext = {
    db: options.db,
    broker: options.broker,
    logger,
    settings,
    auth: createBearerAuth(createSessionStore(options.db, { now }), { now }),
    limits: new RateLimits({ ...options.rateLimits, redis: options.rateLimitRedis }, metrics),
    passwordHashes,
    relay,
    prices: createPriceReader(createPriceStore(options.broker), { timeoutMs: options.priceReadTimeoutMs, logger }),
    metrics,
    now,
  };

  const setSecurityHeaders = createSecurityHeaders({
    contentSecurityPolicy: {
      directives: {
        // The page may open a WebSocket to the configured gateway and nowhere else.
        'connect-src': ["'self'", ...gatewaySources(settings.publicConfig)],
      },
    },
  });

  const app = fastify({
    logger: false,
    bodyLimit: options.bodyLimit ?? 16 * 1024,
    trustProxy: options.trustProxy ?? false,
    // A client that trickles its request must not hold a connection forever.
    requestTimeout: 30_000,
    onProtoPoisoning: 'error',
    onConstructorPoisoning: 'error',
    frameworkErrors: createFrameworkErrorHandler(logger, setSecurityHeaders),
  });

  // JSON only: text/plain would let any web page post cross-origin without a CORS preflight.
  // An empty JSON body is accepted as "no body" (logout), and answered 400 where one is needed.
  app.removeAllContentTypeParsers();
  const parseJson = app.getDefaultJsonParser('error', 'error');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    if (body === '') return done(null, undefined);
    void parseJson(request, body as string, done);
  });

  app.setErrorHandler(createErrorHandler(logger));

  app.addHook('onResponse', async (request, reply) => {
    const route = request.routeOptions.url ?? 'unmatched';
    metrics.httpRequests.inc({ method: request.method, route, status: String(reply.statusCode) });
    metrics.httpDuration.observe({ method: request.method, route }, reply.elapsedTime / 1000);
  });

  registerSecurityHeaders(app, setSecurityHeaders);

  const allowedOrigins = new Set(options.allowedOrigins ?? []);
  void app.register(cors, {
    origin: (origin, callback) => callback(null, origin !== undefined && allowedOrigins.has(origin)),
    methods: ['GET', 'POST'],
    allowedHeaders: ['Content-Type', 'Authorization', 'Idempotency-Key'],
    exposedHeaders: ['Retry-After', 'Idempotent-Replayed'],
    maxAge: 600,
  });

  void app.register((scope, _opts, done) => {
    registerAuthRoutes(scope, ctx);
    registerOrderRoutes(scope, ctx);
    registerAccountRoutes(scope, ctx);
    registerMarketRoutes(scope, ctx);
    registerSystemRoutes(scope, ctx, registry, metricsAccess);
    done();
  });

  const staticRoot = options.staticDir ? resolve(options.staticDir) : null;
  const serveSite = staticRoot !== null && existsSync(join(staticRoot, 'index.html'));
  if (staticRoot !== null && !serveSite)
    logger.warn({ staticDir: staticRoot }, 'no index.html in staticDir; not serving the web app');
  if (serveSite) void app.register(fastifyStatic, { root: staticRoot, prefix: '/', index: ['index.html'] });

  app.setNotFoundHandler((request, reply) => {
    // Single-page app: a browser navigating to a client-side route gets the page.
    if (serveSite && request.method === 'GET' && (request.headers.accept ?? '').includes('text/html')) {
      return reply.sendFile('index.html');
    }
    return reply.code(404).send(errorBody('not_found', 'no such route'));
  });

  relay.start();
  housekeeping.start();

  let closing: Promise<void> | undefined;
  return {
    app,
    relay,
    housekeeping,
    passwordHashes,
    registry,
    close() {
      closing ??= (async () => {
        await relay.close();
        await housekeeping.close();
        await app.close();
      })();
      return closing;
    },
  };
}

function resolveSettings(options: ApiOptions): ApiSettings {
  const symbols = options.symbols ?? ['SOL'];
  if (!Array.isArray(symbols) || symbols.length === 0)
    throw new TypeError('createApi: symbols must be a non-empty list');
  for (const symbol of symbols) {
    if (!SYMBOL_PATTERN.test(symbol) || symbol === QUOTE_ASSET) {
      throw new TypeError(`createApi: symbol ${JSON.stringify(symbol)} must be 1-16 of A-Z0-9 and not ${QUOTE_ASSET}`);
    }
  }
  if (new Set(symbols).size !== symbols.length) throw new TypeError('createApi: symbols has duplicates');

  const feeRate = decimalOption('feeRate', options.feeRate ?? '0.0001');
  if (dec(feeRate).gte(1)) throw new TypeError(`createApi: feeRate must be below 1, got ${feeRate}`);
  const startingBalanceUsd = decimalOption('startingBalanceUsd', options.startingBalanceUsd ?? '10000');
  const maxOrderSize = decimalOption('maxOrderSize', options.maxOrderSize ?? '1000000000');
  if (dec(maxOrderSize).lte(0)) throw new TypeError('createApi: maxOrderSize must be greater than zero');

  const sessionTtlMs = options.sessionTtlMs ?? 7 * 24 * 60 * 60 * 1000;
  if (!Number.isInteger(sessionTtlMs) || sessionTtlMs < 1000) {
    throw new TypeError(`createApi: sessionTtlMs must be an integer of at least 1000, got ${sessionTtlMs}`);
  }
  const maxPriceAgeMs = options.maxPriceAgeMs ?? 10_000;
  if (!Number.isInteger(maxPriceAgeMs) || maxPriceAgeMs < 1) {
    throw new TypeError(`createApi: maxPriceAgeMs must be a positive integer, got ${maxPriceAgeMs}`);
  }
  const publicConfig = options.publicConfig ?? { wsUrl: null, wsPort: 3001 };
  if (!Number.isInteger(publicConfig.wsPort) || publicConfig.wsPort < 0 || publicConfig.wsPort > 65535) {
    throw new TypeError(`createApi: publicConfig.wsPort must be a port number, got ${publicConfig.wsPort}`);
  }
  return {
    symbols: [...symbols],
    quoteAsset: QUOTE_ASSET,
    feeRate,
    startingBalanceUsd,
    maxOrderSize,
    sessionTtlMs,
    maxPriceAgeMs,
    passwordHash: { ...DEFAULT_PASSWORD_HASH, ...options.passwordHash },
    publicConfig: { wsUrl: publicConfig.wsUrl ?? null, wsPort: publicConfig.wsPort },
  };
}

/** A hostname that may go into a CSP source expression as is (no spaces, quotes or `;`). */
const CSP_HOST = /^(?:[a-z0-9-]{1,63}\.)*[a-z0-9-]{1,63}$|^\[[0-9a-f:.]{2,45}\]$/i;

/**
 * The CSP `connect-src` sources of the gateway: the configured `wsUrl`'s origin, or else the
 * page's own host on `wsPort` (how the page connects then), taken from each request's `Host`
 * header and used only when it is a plain hostname.
 */
function gatewaySources(publicConfig: { wsUrl: string | null; wsPort: number }) {
  if (publicConfig.wsUrl) return [new URL(publicConfig.wsUrl).origin];
  const port = publicConfig.wsPort;
  return [
    (request: IncomingMessage) => {
      const host = hostOf(request.headers.host);
      return host ? `ws://${host}:${port} wss://${host}:${port}` : "'self'";
    },
  ];
}

function hostOf(header: string | undefined): string | null {
  if (!header) return null;
  const host = header.startsWith('[') ? header.slice(0, header.indexOf(']') + 1) : header.split(':')[0]!;
  return CSP_HOST.test(host) ? host.toLowerCase() : null;
}

function decimalOption(name: string, value: string): string {
  if (typeof value !== 'string' || !DECIMAL_PATTERN.test(value)) {
    throw new TypeError(`createApi: ${name} must be a non-negative decimal string, got ${JSON.stringify(value)}`);
  }
  return value;
}
