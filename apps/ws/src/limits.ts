/**
 * Every limit the gateway enforces, with its default. docs/protocol.md lists the same table;
 * each limit has a test that crosses it (apps/ws/test/limits.test.ts).
 */
export interface GatewayLimits {
  /** Largest client frame in bytes; a bigger one closes the socket with 1009. Default 16 KiB. */
  maxPayloadBytes: number;
  /** Open WebSocket connections per process; further upgrades get HTTP 503. Default 20,000. */
  maxConnections: number;
  /** Client messages accepted per socket per `rateWindowMs`; the rest get `rate_limited`. Default 50. */
  messagesPerWindow: number;
  /** Length of the rate-limit window in ms. Default 1000 (so 50 messages/s). */
  rateWindowMs: number;
  /**
   * Messages a socket may have rejected with `rate_limited` before it is closed with 1008.
   * The count resets after a window in which the socket stayed within the limit. Default 50.
   */
  floodCloseAfter: number;
  /** Bytes buffered for a socket above which price ticks are conflated (latest per symbol). Default 256 KiB. */
  softBufferedBytes: number;
  /** Bytes buffered for a socket above which it is closed with 4008 "slow consumer". Default 1 MiB. */
  hardBufferedBytes: number;
  /** Interval between server pings. Default 25 s. */
  pingIntervalMs: number;
  /** A socket that has not answered a ping within this time is terminated. Default 10 s. */
  pongTimeoutMs: number;
  /** Longest wait for the session verifier; past it the client gets `internal_error`. Default 5 s. */
  authTimeoutMs: number;
  /** Longest wait for a snapshot read; past it the subscription goes on without one. Default 2 s. */
  snapshotTimeoutMs: number;
  /**
   * After the gateway sends a close frame (shutdown, flood), how long the peer has to answer it
   * before the socket is destroyed; also how long a peer that started the close has to end the
   * connection after the gateway's answer. Default 2 s.
   */
  closeGraceMs: number;
  /**
   * `closeGraceMs` for a 4008 close: its close frame waits behind the unread data (up to
   * `hardBufferedBytes` in the gateway, more in the kernels' buffers), so a client stalled for a
   * few seconds needs longer to reach it. The socket is destroyed this long after the close
   * (1006 at a client that has not read up to it), holding at most `hardBufferedBytes` until
   * then. At least `closeGraceMs`. Default 30 s.
   */
  slowConsumerDrainMs: number;
  /** Time for a client to send the HTTP upgrade request headers. Default 10 s. */
  handshakeTimeoutMs: number;
  /** Symbols whose last live tick the gateway keeps for snapshots. Default 1000. */
  maxSymbols: number;
  /**
   * Upgrade attempts one client address may make per `upgradeWindowMs` (IPv6: per /64);
   * further attempts get HTTP 429 with `Retry-After`. Default 200 (per 10 s).
   */
  upgradesPerAddress: number;
  /** Length of the per-address upgrade window in ms. Default 10,000. */
  upgradeWindowMs: number;
  /**
   * Channels one socket may be subscribed to at once; a subscription past it gets
   * `too_many_subscriptions`. Default 3, every channel the protocol has: the cap bounds the
   * per-socket cost should channels ever multiply (per symbol, per market).
   */
  maxSubscriptions: number;
  /**
   * Requests one socket may have accepted and not yet answered (the one being answered
   * included); past it a request gets `rate_limited` at once, and counts towards
   * `floodCloseAfter` like a message over the rate. Default 8: a client that waits for its
   * answers never has more than a few outstanding.
   */
  maxQueuedRequests: number;
  /**
   * Token verifications (session store queries) in flight at once in this process. Default 32.
   * A verification holds its slot until the store answers, also past `authTimeoutMs`, so the
   * bound is on the database work itself.
   */
  authConcurrency: number;
  /**
   * Verifications that may wait for a slot; past it an `auth` is answered `rate_limited` at
   * once. Default 256. Waiting counts against `authTimeoutMs`.
   */
  maxAuthWaiting: number;
  /**
   * Open sockets one client address may hold (IPv6: per /64); further upgrades get HTTP 429.
   * Default 200.
   */
  maxConnectionsPerAddress: number;
  /**
   * How often every authenticated socket's session is checked against the session store
   * (revoked or expired ones are ended), besides after every broker recovery. Default 60 s.
   */
  sessionRecheckIntervalMs: number;
}

/** The defaults, documented in docs/protocol.md. A fresh object each call. */
export function defaultLimits(): GatewayLimits {
  return {
    maxPayloadBytes: 16 * 1024,
    maxConnections: 20_000,
    messagesPerWindow: 50,
    rateWindowMs: 1000,
    floodCloseAfter: 50,
    softBufferedBytes: 256 * 1024,
    hardBufferedBytes: 1024 * 1024,
    pingIntervalMs: 25_000,
    pongTimeoutMs: 10_000,
    authTimeoutMs: 5_000,
    snapshotTimeoutMs: 2_000,
    closeGraceMs: 2_000,
    slowConsumerDrainMs: 30_000,
    handshakeTimeoutMs: 10_000,
    maxSymbols: 1000,
    upgradesPerAddress: 200,
    upgradeWindowMs: 10_000,
    maxSubscriptions: 3,
    maxQueuedRequests: 8,
    authConcurrency: 32,
    maxAuthWaiting: 256,
    maxConnectionsPerAddress: 200,
    sessionRecheckIntervalMs: 60_000,
  };
}

/** Node's longest timer delay; a longer one fires after 1 ms instead (with a warning). */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** A limit that cannot work as given. Thrown by `createGateway`, naming the option. */
export class InvalidLimitError extends Error {
  readonly code = 'invalid_limit';
  constructor(message: string) {
    super(message);
    this.name = 'InvalidLimitError';
  }
}

/**
 * Fills in defaults and validates once, so the hot path never re-checks. Conflicting limits
 * fail with a message that names both.
 */
/** `value` when it can serve as limit `key`: a positive integer, and a duration a timer can hold. */
export function checkLimit(key: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value <= 0) {
    throw new InvalidLimitError(`limit "${key}" must be a positive integer, got ${JSON.stringify(value)}`);
  }
  // Durations end up in setTimeout/setInterval, which fire at once past 2^31-1 ms.
  if (key.endsWith('Ms') && value > MAX_TIMER_MS) {
    throw new InvalidLimitError(`limit "${key}" must be at most ${MAX_TIMER_MS} ms (about 24.8 days), got ${value}`);
  }
  return value;
}

export function resolveLimits(overrides: Partial<GatewayLimits> = {}): GatewayLimits {
  const limits = { ...defaultLimits() };
  for (const [key, value] of Object.entries(overrides) as [keyof GatewayLimits, unknown][]) {
    if (value === undefined) continue;
    if (!(key in limits)) throw new InvalidLimitError(`unknown limit "${key}"`);
    limits[key] = checkLimit(key, value);
  }
  if (limits.softBufferedBytes >= limits.hardBufferedBytes) {
    throw new InvalidLimitError(
      `softBufferedBytes (${limits.softBufferedBytes}) must be below hardBufferedBytes (${limits.hardBufferedBytes})`,
    );
  }
  // A slow consumer's close frame waits behind its queue: it cannot be given less time than any close.
  if (limits.slowConsumerDrainMs < limits.closeGraceMs) {
    throw new InvalidLimitError(
      `slowConsumerDrainMs (${limits.slowConsumerDrainMs}) must be at least closeGraceMs (${limits.closeGraceMs})`,
    );
  }
  // Conflated ticks are flushed on the socket's 'drain' event, which Node only emits after a
  // write found the buffer at or above its high-water mark (16 KiB on Node 20).
  if (limits.softBufferedBytes < 16 * 1024) {
    throw new InvalidLimitError(`softBufferedBytes (${limits.softBufferedBytes}) must be at least 16384`);
  }
  return limits;
}
