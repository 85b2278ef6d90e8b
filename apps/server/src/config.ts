import { z } from 'zod';

/** The process roles one launcher can run; no role on the command line means all three. */
export const ROLES = ['api', 'ws', 'worker'] as const;
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

const list = (itemPattern: RegExp, itemHint: string) =>
  z
    .string()
    .transform((value) =>
      value
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean),
    )
    .refine((items) => items.every((item) => itemPattern.test(item)), `must be a comma-separated list of ${itemHint}`);

/** `host:port` (IPv6 in brackets, `[::1]:7000`) with a port from 1 to 65535. */
const NODE_ADDRESS = /^(?:\[[0-9A-Fa-f:.]+\]|[^\s:,[\]]+):([1-9]\d{0,4})$/;
const nodeAddresses = list(NODE_ADDRESS, 'host:port addresses such as "10.0.0.5:7000"')
  .refine((nodes) => nodes.length > 0, 'must name at least one node as host:port')
  .refine((nodes) => nodes.every((node) => Number(NODE_ADDRESS.exec(node)?.[1]) <= 65535), 'has a port above 65535');

/** Most user partitions in Redis Cluster mode; `partitionedChannelLayout` accepts the same range. */
const MAX_REDIS_PARTITIONS = 1024;

/** An empty variable counts as unset, so `REDIS_URL= npm start` means "no Redis". */
const optional = <T extends z.ZodTypeAny>(schema: T) =>
  z.preprocess((v) => (v === '' ? undefined : v), schema.optional());

const EnvSchema = z.object({
  PORT: port(3000),
  WS_PORT: port(3001),
  HOST: z.string().min(1).default('127.0.0.1'),
  REDIS_URL: optional(url(['redis:', 'rediss:'])),
  REDIS_CLUSTER_NODES: optional(nodeAddresses),
  /** Unset means the default (16) in cluster mode; set, it must come with REDIS_CLUSTER_NODES. */
  REDIS_PARTITIONS: optional(positiveInt(16, 1, MAX_REDIS_PARTITIONS)),
  DATABASE_URL: optional(url(['postgres:', 'postgresql:'])),
  DATA_DIR: z.string().min(1).default('./data'),
  SYMBOLS: list(/^[A-Z0-9]{1,16}$/, 'symbols of A-Z and 0-9, such as "SOL"').default('SOL'),
  FEE_RATE: decimal('0.0001'),
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
  PYTH_HERMES_URL: url(['http:', 'https:']).default('https://hermes.pyth.network'),
  PYTH_API_KEY: optional(z.string()),
  ALLOWED_ORIGINS: optional(list(/^https?:\/\/[^\s/]+$/, 'origins such as "https://app.example.com"')),
  STATIC_DIR: z.string().default('apps/web/dist'),
  WS_PUBLIC_URL: optional(url(['ws:', 'wss:'])),
  HISTORY_RETENTION_EVENTS: positiveInt(1000, 1, 10_000_000),
  HISTORY_RETENTION_SECONDS: positiveInt(86_400, 1, 365 * 86_400),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
});

export interface Config {
  port: number;
  wsPort: number;
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
  /** Origins allowed to open WebSockets and call the API from a browser. */
  allowedOrigins: string[];
  staticDir: string;
  wsPublicUrl: string | undefined;
  logLevel: string;
  /** Each user's last this many order events stay replayable (`HISTORY_RETENTION_EVENTS`, default 1000). */
  historyRetentionEvents: number;
  /** And every event stays replayable this long (`HISTORY_RETENTION_SECONDS`, default 24 h). */
  historyRetentionMs: number;
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
      const shown = name === 'PYTH_API_KEY' || got === undefined ? '' : ` (got ${JSON.stringify(got.slice(0, 80))})`;
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
  const appOrigins = [`http://localhost:${e.PORT}`, `http://127.0.0.1:${e.PORT}`];
  // The Vite dev server (npm run dev -w @repo/web) is a local origin too.
  const devOrigins = ['http://localhost:5173', 'http://127.0.0.1:5173'];
  return {
    port: e.PORT,
    wsPort: e.WS_PORT,
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
    allowedOrigins: e.ALLOWED_ORIGINS ?? [...appOrigins, ...devOrigins],
    staticDir: e.STATIC_DIR,
    wsPublicUrl: e.WS_PUBLIC_URL,
    logLevel: e.LOG_LEVEL,
    historyRetentionEvents: e.HISTORY_RETENTION_EVENTS,
    historyRetentionMs: e.HISTORY_RETENTION_SECONDS * 1000,
  };
}

/**
 * Parses the role arguments (`api`, `ws`, `worker`, in any combination; none means all).
 * Split roles run as separate processes, so they need the shared Redis (or Redis Cluster) and
 * PostgreSQL.
 */
export function parseRoles(
  args: readonly string[],
  config: Pick<Config, 'redisUrl' | 'databaseUrl'> & Partial<Pick<Config, 'redisClusterNodes'>>,
): Set<Role> {
  const unknown = args.filter((a) => !(ROLES as readonly string[]).includes(a));
  if (unknown.length > 0) {
    throw new ConfigError(
      `unknown role ${unknown.map((u) => JSON.stringify(u)).join(', ')}: roles are ${ROLES.join(', ')}`,
    );
  }
  const roles = new Set<Role>(args.length === 0 ? ROLES : (args as Role[]));
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
