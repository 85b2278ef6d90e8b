import { availableParallelism } from 'node:os';
import { z } from 'zod';
import { isAddressOrCidr } from '@repo/http-access';
import { MAX_PORTFOLIO_ASSETS } from '@repo/events';

/** The asset every price, balance and fee is in (the API's quote asset). */
const QUOTE_ASSET = 'USD';

/** The process roles one launcher can run; no role on the command line means all three. */
const ROLES = ['api', 'ws', 'worker'] as const;
export type Role = (typeof ROLES)[number];

const port = (fallback: number) =>
  z
    .string()
    .regex(/^\d+$/, 'must be an integer port number')
    .transform(Number)
    .refine((n) => n >= 0 && n <= 65535, 'must be between 0 and 65535')
    .default(String(fallback));

const positiveInt = (fallback: number, min: number, max: number) =>
  z
    .string()
    .regex(/^\d+$/, 'must be a positive integer')
    .transform(Number)
    .refine((n) => n >= min && n <= max, `must be between ${min} and ${max}`)
    .default(String(fallback));

const decimal = (fallback: string) =>
  z
    .string()
    .regex(/^(?:0|[1-9]\d{0,20})(?:\.\d{1,18})?$/, 'must be a non-negative decimal such as "0.0001"')
    .default(fallback);

const url = (protocols: string[]) =>
  z.string().refine(
    (value) => {
      try {
        return protocols.includes(new URL(value).protocol);
      } catch {
        return false;
      }
    },
    `must be a URL starting with ${protocols.map((p) => `${p}//`).join(' or ')}`,
  );

const list = (isItem: RegExp | ((item: string) => boolean), itemHint: string) =>
  z
    .string()
    .transform((value) =>
      value
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean),
    )
    .refine(
      (items) => items.every((item) => (typeof isItem === 'function' ? isItem(item) : isItem.test(item))),
      `must be a comma-separated list of ${itemHint}`,
    );

/** `10.0.0.1,10.0.0.0/8,2001:db8::/32`: addresses and CIDR blocks; empty or unset means none. */
const addressList = list(isAddressOrCidr, 'IP addresses or CIDR blocks such as "10.0.0.0/8"').default('');

/** `host:port` (IPv6 in brackets, `[::1]:7000`) with a port from 1 to 65535. */
const NODE_ADDRESS = /^(?:\[[0-9A-Fa-f:.]+\]|[^\s:,[\]]+):([1-9]\d{0,4})$/;
const nodeAddresses = list(NODE_ADDRESS, 'host:port addresses such as "10.0.0.5:7000"')
  .refine((nodes) => nodes.length > 0, 'must name at least one node as host:port')
  .refine((nodes) => nodes.every((node) => Number(NODE_ADDRESS.exec(node)?.[1]) <= 65535), 'has a port above 65535');

/** Most gateway worker processes of one node (`WS_WORKERS`). */
const MAX_WS_WORKERS = 256;

/** `WS_WORKERS`: a count, or `auto` for one per core. */
const wsWorkers = z
  .string()
  .regex(/^(?:auto|[1-9]\d{0,3})$/, `must be "auto" (one per core) or a whole number from 1 to ${MAX_WS_WORKERS}`)
  .transform((value) => (value === 'auto' ? availableParallelism() : Number(value)))
  .refine((n) => n <= MAX_WS_WORKERS, `must be at most ${MAX_WS_WORKERS}`)
  .default('1');

/** Most user partitions in Redis Cluster mode; `partitionedChannelLayout` accepts the same range. */
const MAX_REDIS_PARTITIONS = 1024;

/** `https:`, or `http:` to a loopback host (a local Hermes or test double): the API key travels in the request. */
const hermesUrl = url(['http:', 'https:']).refine((value) => {
  // Runs after url()'s own check even when that failed: an unparsable value is its message, not this one's.
  const parsed = URL.canParse(value) ? new URL(value) : undefined;
  return parsed === undefined || parsed.protocol === 'https:' || isLoopback(parsed.hostname);
}, 'must start with https:// (http:// is allowed only for a loopback host such as 127.0.0.1 or localhost)');

function isLoopback(hostname: string): boolean {
  return hostname === 'localhost' || hostname === '[::1]' || /^127(?:\.\d{1,3}){3}$/.test(hostname);
}

/** `SOL=0x…,BTC=0x…`: a Pyth feed id (64 hex digits, 0x optional) per symbol. */
const feedIdList = z.string().transform((value, ctx) => {
  const ids: Record<string, string> = {};
  for (const item of value
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)) {
    const match = /^([A-Z0-9]{1,16})=((?:0x)?[0-9a-fA-F]{64})$/.exec(item);
    if (!match) {
      ctx.addIssue({
        code: z.ZodIssueCode.custom,
        message: `must be a comma-separated list of SYMBOL=0x<64 hex digits>, got ${JSON.stringify(item.slice(0, 90))}`,
      });
      return z.NEVER;
    }
    if (ids[match[1]!] !== undefined) {
      ctx.addIssue({ code: z.ZodIssueCode.custom, message: `names ${match[1]!} twice` });
      return z.NEVER;
    }
    ids[match[1]!] = match[2]!;
  }
  return ids;
});

const DURATION_UNIT_MS = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;

/** How long candles are kept: `6h`, `30d`, `90m`, `3600s` (at least an hour, at most 100 years) or `forever` (null). */
const retention = (fallback: string) =>
  z
    .string()
    .regex(/^(?:forever|[1-9]\d{0,9}[smhd])$/, 'must be a duration such as "6h", "30d" or "90m", or "forever"')
    .transform((value) =>
      value === 'forever' ? null : Number(value.slice(0, -1)) * DURATION_UNIT_MS[value.at(-1) as 's' | 'm' | 'h' | 'd'],
    )
    .refine(
      (ms) => ms === null || (ms >= 3_600_000 && ms <= 100 * 365 * 86_400_000),
      'must be between 1h and 100 years',
    )
    .default(fallback);

/** An empty variable counts as unset, so `REDIS_URL= npm start` means "no Redis". */
const optional = <T extends z.ZodTypeAny>(schema: T) =>
  z.preprocess((v) => (v === '' ? undefined : v), schema.optional());

const EnvSchema = z.object({
  PORT: port(3000),
  WS_PORT: port(3001),
  /** Gateway processes sharing WS_PORT (node:cluster); `auto` is one per core. */
  WS_WORKERS: wsWorkers,
  HOST: z
    .string()
    .regex(/^[^\s,]+$/, 'must be one host name or address, such as 127.0.0.1 or 0.0.0.0')
    .default('127.0.0.1'),
  REDIS_URL: optional(
    url(['redis:', 'rediss:']).refine(
      (value) => !URL.canParse(value) || new URL(value).hostname !== '',
      'must name a host, such as redis://127.0.0.1:6379',
    ),
  ),
  REDIS_CLUSTER_NODES: optional(nodeAddresses),
  /** Unset means the default (16) in cluster mode; set, it must come with REDIS_CLUSTER_NODES. */
  REDIS_PARTITIONS: optional(positiveInt(16, 1, MAX_REDIS_PARTITIONS)),
  DATABASE_URL: optional(url(['postgres:', 'postgresql:'])),
  // Blank would be a directory named by spaces beside wherever the process started.
  DATA_DIR: z
    .string()
    .refine((value) => value.trim() !== '', 'must be a directory path')
    .default('./data'),
  SYMBOLS: list(/^[A-Z0-9]{1,16}$/, 'symbols of A-Z and 0-9, such as "SOL"')
    .refine((items) => items.length > 0, 'must name at least one symbol')
    .refine((items) => new Set(items).size === items.length, 'must not name a symbol twice')
    // Each symbol is a position of every user, and a portfolio event with more would fail its
    // schema: the relay would skip every portfolio event, and live portfolios would stop.
    .refine(
      (items) => items.length <= MAX_PORTFOLIO_ASSETS,
      `must name at most ${MAX_PORTFOLIO_ASSETS} symbols (a portfolio event carries at most that many positions)`,
    )
    .refine((items) => !items.includes(QUOTE_ASSET), `must not name ${QUOTE_ASSET}, the asset every price is in`)
    .default('SOL,BTC,ETH'),
  FEE_RATE: decimal('0.0001').refine(
    (value) => /^0(?:\.\d+)?$/.test(value),
    'must be below 1: a fraction of the cost, such as "0.0001"',
  ),
  STARTING_BALANCE_USD: decimal('10000'),
  SESSION_TTL_HOURS: positiveInt(168, 1, 24 * 365),
  /**
   * Session lifetime in seconds; overrides SESSION_TTL_HOURS when set. For tests and drills
   * that need a session to expire while its sockets are open; production uses the hours.
   */
  SESSION_TTL_SECONDS: optional(positiveInt(0, 1, 365 * 24 * 3600)),
  PRICE_SOURCE: z.enum(['simulated', 'pyth']).default('simulated'),
  PRICE_INTERVAL_MS: positiveInt(1000, 50, 3_600_000),
  PRICE_SEED: optional(
    z
      .string()
      .regex(/^\d{1,9}$/, 'must be an integer')
      .transform(Number),
  ),
  PYTH_HERMES_URL: hermesUrl.default('https://hermes.pyth.network'),
  PYTH_API_KEY: optional(z.string()),
  PYTH_TRANSPORT: z.enum(['stream', 'poll']).default('stream'),
  PYTH_MAX_CONF_RATIO: z
    .string()
    .regex(/^(?:0|[1-9]\d{0,8})(?:\.\d{1,18})?$/, 'must be a decimal such as "0.01"')
    .refine((value) => /[1-9]/.test(value), 'must be greater than 0')
    .default('0.01'),
  PYTH_FEED_IDS: optional(feedIdList),
  ALLOWED_ORIGINS: optional(
    list(/^https?:\/\/[^\s/]+$/, 'origins such as "https://app.example.com"').refine(
      (items) => items.length > 0,
      'must name at least one origin (unset, it is the defaults)',
    ),
  ),
  // Empty is unset like every other variable: resolved as given, "" is the working directory,
  // whose every file the API would serve whenever it holds an index.html.
  STATIC_DIR: z.preprocess(
    (v) => (typeof v === 'string' && v.trim() === '' ? undefined : v),
    z.string().default('apps/web/dist'),
  ),
  WS_PUBLIC_URL: optional(url(['ws:', 'wss:'])),
  HISTORY_RETENTION_EVENTS: positiveInt(1000, 1, 10_000_000),
  HISTORY_RETENTION_SECONDS: positiveInt(86_400, 1, 365 * 86_400),
  /** Oldest price an order may fill at; older → 422 price_stale, and GET /prices says stale. */
  MAX_PRICE_AGE_MS: positiveInt(10_000, 100, 86_400_000),
  /** Orders per user per second, then 429 rate_limited (shared through Redis when set). */
  ORDERS_PER_USER_PER_SECOND: positiveInt(20, 1, 100_000),
  /**
   * Reverse proxies whose X-Forwarded-For names the client, for the API (Fastify trustProxy)
   * and the gateway; unset, the client is the TCP peer.
   */
  TRUST_PROXY: addressList,
  /** Client addresses the gateway's per-address limits skip (local load tests); unset, none. */
  WS_LIMIT_EXEMPT: addressList,
  /** Open WebSockets per client address (IPv6 per /64), then HTTP 429 at upgrade. */
  WS_MAX_CONNECTIONS_PER_ADDRESS: positiveInt(200, 1, 1_000_000),
  /** Open WebSockets of the gateway node (every worker together), then HTTP 503 at upgrade. */
  WS_MAX_CONNECTIONS: positiveInt(20_000, 1, 10_000_000),
  /** Requests one socket may have unanswered, then rate_limited. */
  WS_MAX_QUEUED_REQUESTS: positiveInt(8, 1, 1000),
  /** Token verifications in flight per gateway process. */
  AUTH_CONCURRENCY: positiveInt(32, 1, 10_000),
  /** Token verifications waiting for a slot per gateway process, then rate_limited. */
  AUTH_MAX_WAITING: positiveInt(256, 1, 1_000_000),
  /** How often the gateway re-checks every open socket's session (also after each broker recovery). */
  SESSION_RECHECK_INTERVAL_MS: positiveInt(60_000, 1000, 86_400_000),
  /** Bearer token for /metrics; unset, /metrics answers loopback clients only. */
  METRICS_TOKEN: optional(z.string().regex(/^[\x21-\x7e]{16,256}$/, 'must be 16-256 visible ASCII characters')),
  /** How long the price worker's candles are kept, per interval. */
  CANDLE_RETENTION_1S: retention('6h'),
  CANDLE_RETENTION_1M: retention('30d'),
  CANDLE_RETENTION_1H: retention('forever'),
  /** How often the changed candles are written (one batch per flush). */
  CANDLE_FLUSH_INTERVAL_MS: positiveInt(1000, 100, 60_000),
  /** `development` adds the Vite dev server's origins to the default ALLOWED_ORIGINS. */
  NODE_ENV: optional(z.string()),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
});

export interface Config {
  port: number;
  wsPort: number;
  /** Gateway worker processes sharing `wsPort` (`WS_WORKERS`, default 1; `auto` = cores). */
  wsWorkers: number;
  host: string;
  redisUrl: string | undefined;
  /** Redis Cluster nodes to discover the cluster from (`REDIS_CLUSTER_NODES`); unset without a cluster. */
  redisClusterNodes: string[] | undefined;
  /** User partitions of the private channels in Redis Cluster mode (`REDIS_PARTITIONS`, default 16). */
  redisPartitions: number;
  databaseUrl: string | undefined;
  dataDir: string;
  symbols: string[];
  feeRate: string;
  startingBalanceUsd: string;
  sessionTtlMs: number;
  priceSource: 'simulated' | 'pyth';
  priceIntervalMs: number;
  priceSeed: number | undefined;
  pythHermesUrl: string;
  pythApiKey: string | undefined;
  /** `stream` (SSE, polling only while it is down) or `poll`. */
  pythTransport: 'stream' | 'poll';
  /** Updates whose `conf / price` exceeds this decimal are not published. */
  pythMaxConfRatio: string;
  /** Symbol → Pyth feed id from `PYTH_FEED_IDS`; other symbols are looked up on Hermes at start. */
  pythFeedIds: Record<string, string>;
  /** Origins allowed to open WebSockets and call the API from a browser. */
  allowedOrigins: string[];
  staticDir: string;
  wsPublicUrl: string | undefined;
  logLevel: string;
  /** Each user's last this many order events stay replayable (`HISTORY_RETENTION_EVENTS`, default 1000). */
  historyRetentionEvents: number;
  /** And every event stays replayable this long (`HISTORY_RETENTION_SECONDS`, default 24 h). */
  historyRetentionMs: number;
  /** Oldest price an order fills at (`MAX_PRICE_AGE_MS`, default 10 s). */
  maxPriceAgeMs: number;
  /** Per-user order limit per second (`ORDERS_PER_USER_PER_SECOND`, default 20). */
  ordersPerUserPerSecond: number;
  /** `METRICS_TOKEN`: Bearer token for /metrics, or undefined for loopback-only metrics. */
  metricsToken: string | undefined;
  /** Candle retention per interval in ms, null for forever (`CANDLE_RETENTION_1S`, `_1M`, `_1H`). */
  candleRetentionMs: { '1s': number | null; '1m': number | null; '1h': number | null };
  /** Time between candle flushes (`CANDLE_FLUSH_INTERVAL_MS`, default 1000). */
  candleFlushIntervalMs: number;
  /** `TRUST_PROXY`: proxies (addresses, CIDRs) whose X-Forwarded-For is believed; empty for none. */
  trustProxy: string[];
  /** `WS_LIMIT_EXEMPT`: addresses and CIDRs the gateway's per-address limits skip; empty for none. */
  wsLimitExempt: string[];
  /** The gateway's limits that come from the environment (see `GatewayLimits`). */
  wsLimits: {
    maxConnections: number;
    maxConnectionsPerAddress: number;
    maxQueuedRequests: number;
    authConcurrency: number;
    maxAuthWaiting: number;
    sessionRecheckIntervalMs: number;
  };
}

/** A configuration value that cannot be used. The message names the variable. */
export class ConfigError extends Error {
  readonly code = 'invalid_config';
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

/**
 * Reads and validates the environment once, at start. Any wrong value throws a ConfigError
 * naming every offending variable, so the process stops before it serves anything.
 */
export function loadConfig(env: Record<string, string | undefined>): Config {
  const parsed = EnvSchema.safeParse(env);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((issue) => {
      const name = String(issue.path[0] ?? '?');
      const got = env[name];
      const shown =
        name === 'PYTH_API_KEY' || name === 'METRICS_TOKEN' || got === undefined
          ? ''
          : ` (got ${JSON.stringify(got.slice(0, 80))})`;
      return `${name} ${issue.message}${shown}`;
    });
    throw new ConfigError(`invalid configuration: ${lines.join('; ')}`);
  }
  const e = parsed.data;
  if (e.REDIS_URL && e.REDIS_CLUSTER_NODES) {
    throw new ConfigError(
      'invalid configuration: REDIS_URL and REDIS_CLUSTER_NODES are both set: ' +
        'set REDIS_URL for one Redis or REDIS_CLUSTER_NODES for a Redis Cluster, not both',
    );
  }
  if (e.REDIS_PARTITIONS !== undefined && !e.REDIS_CLUSTER_NODES) {
    throw new ConfigError(
      'invalid configuration: REDIS_PARTITIONS applies only to a Redis Cluster (REDIS_CLUSTER_NODES); ' +
        'one Redis and the in-process broker keep one channel per event kind',
    );
  }
  const strayFeeds = Object.keys(e.PYTH_FEED_IDS ?? {}).filter((symbol) => !e.SYMBOLS.includes(symbol));
  if (strayFeeds.length > 0) {
    const listed = e.SYMBOLS.join(',');
    throw new ConfigError(
      `invalid configuration: PYTH_FEED_IDS names ${strayFeeds.join(', ')}, which SYMBOLS (${listed}) does not list`,
    );
  }
  const appOrigins = [`http://localhost:${e.PORT}`, `http://127.0.0.1:${e.PORT}`];
  // The Vite dev server (npm run dev -w @repo/web) is a local origin too, in development only:
  // elsewhere anything listening on port 5173 of a user's machine could use the API.
  const devOrigins = e.NODE_ENV === 'development' ? ['http://localhost:5173', 'http://127.0.0.1:5173'] : [];
  return {
    port: e.PORT,
    wsPort: e.WS_PORT,
    wsWorkers: e.WS_WORKERS,
    host: e.HOST,
    redisUrl: e.REDIS_URL,
    redisClusterNodes: e.REDIS_CLUSTER_NODES,
    redisPartitions: e.REDIS_PARTITIONS ?? 16,
    databaseUrl: e.DATABASE_URL,
    dataDir: e.DATA_DIR,
    symbols: e.SYMBOLS,
    feeRate: e.FEE_RATE,
    startingBalanceUsd: e.STARTING_BALANCE_USD,
    sessionTtlMs: e.SESSION_TTL_SECONDS !== undefined ? e.SESSION_TTL_SECONDS * 1000 : e.SESSION_TTL_HOURS * 3_600_000,
    priceSource: e.PRICE_SOURCE,
    priceIntervalMs: e.PRICE_INTERVAL_MS,
    priceSeed: e.PRICE_SEED,
    pythHermesUrl: e.PYTH_HERMES_URL,
    pythApiKey: e.PYTH_API_KEY,
    pythTransport: e.PYTH_TRANSPORT,
    pythMaxConfRatio: e.PYTH_MAX_CONF_RATIO,
    pythFeedIds: e.PYTH_FEED_IDS ?? {},
    allowedOrigins: e.ALLOWED_ORIGINS ?? [...appOrigins, ...devOrigins],
    staticDir: e.STATIC_DIR,
    wsPublicUrl: e.WS_PUBLIC_URL,
    logLevel: e.LOG_LEVEL,
    historyRetentionEvents: e.HISTORY_RETENTION_EVENTS,
    historyRetentionMs: e.HISTORY_RETENTION_SECONDS * 1000,
    maxPriceAgeMs: e.MAX_PRICE_AGE_MS,
    ordersPerUserPerSecond: e.ORDERS_PER_USER_PER_SECOND,
    metricsToken: e.METRICS_TOKEN,
    candleRetentionMs: { '1s': e.CANDLE_RETENTION_1S, '1m': e.CANDLE_RETENTION_1M, '1h': e.CANDLE_RETENTION_1H },
    candleFlushIntervalMs: e.CANDLE_FLUSH_INTERVAL_MS,
    trustProxy: e.TRUST_PROXY,
    wsLimitExempt: e.WS_LIMIT_EXEMPT,
    wsLimits: {
      maxConnections: e.WS_MAX_CONNECTIONS,
      maxConnectionsPerAddress: e.WS_MAX_CONNECTIONS_PER_ADDRESS,
      maxQueuedRequests: e.WS_MAX_QUEUED_REQUESTS,
      authConcurrency: e.AUTH_CONCURRENCY,
      maxAuthWaiting: e.AUTH_MAX_WAITING,
      sessionRecheckIntervalMs: e.SESSION_RECHECK_INTERVAL_MS,
    },
  };
}

/**
 * Parses the role arguments (`api`, `ws`, `worker`, in any combination; none means all).
 * Split roles run as separate processes, so they need the shared Redis (or Redis Cluster) and
 * PostgreSQL.
 */
export function parseRoles(
  args: readonly string[],
  config: Pick<Config, 'redisUrl' | 'databaseUrl'> &
    Partial<Pick<Config, 'redisClusterNodes' | 'wsWorkers' | 'port' | 'wsPort'>>,
): Set<Role> {
  const unknown = args.filter((a) => !(ROLES as readonly string[]).includes(a));
  if (unknown.length > 0) {
    throw new ConfigError(
      `unknown role ${unknown.map((u) => JSON.stringify(u)).join(', ')}: roles are ${ROLES.join(', ')}`,
    );
  }
  const roles = new Set<Role>(args.length === 0 ? ROLES : (args as Role[]));
  // Port 0 picks a free port for each, so only a fixed port can collide.
  if (
    roles.has('api') &&
    roles.has('ws') &&
    config.port !== undefined &&
    config.port !== 0 &&
    config.port === config.wsPort
  ) {
    throw new ConfigError(
      `PORT and WS_PORT are both ${config.port}: the API and the gateway of this process listen on a port each ` +
        '(set WS_PORT to another port, or run the roles as separate processes)',
    );
  }
  const workers = config.wsWorkers ?? 1;
  if (roles.has('ws') && workers > 1) {
    const missing = [
      !config.redisUrl &&
        !config.redisClusterNodes &&
        'a broker (REDIS_URL, or REDIS_CLUSTER_NODES for a Redis Cluster)',
      !config.databaseUrl && 'DATABASE_URL',
    ].filter(Boolean);
    if (missing.length > 0) {
      throw new ConfigError(
        `WS_WORKERS=${workers} runs ${workers} gateway processes, which needs ${missing.join(' and ')}: ` +
          'each process receives only the events of its own broker, so with the in-process one a worker would ' +
          'miss every order and price published elsewhere, and the embedded database belongs to one process ' +
          '(set WS_WORKERS=1, or give them)',
      );
    }
  }
  if (roles.size < ROLES.length) {
    const missing = [
      !config.redisUrl && !config.redisClusterNodes && 'REDIS_URL',
      !config.databaseUrl && 'DATABASE_URL',
    ].filter(Boolean);
    if (missing.length > 0) {
      throw new ConfigError(
        `running only ${[...roles].join(' + ')} needs ${missing.join(' and ')}: separate processes share events ` +
          'through Redis (REDIS_URL, or REDIS_CLUSTER_NODES for a Redis Cluster) and state through PostgreSQL ' +
          '(run without roles for the all-in-one mode)',
      );
    }
  }
  return roles;
}
