import { createClient } from 'redis';

export type RedisClient = ReturnType<typeof createClient>;

export interface RedisClientOptions {
  /** First reconnect delay in ms (default 50). */
  baseDelayMs?: number;
  /** Upper bound of the reconnect delay in ms (default 5000). */
  maxDelayMs?: number;
}

/**
 * Full-jitter capped exponential backoff: a random delay in [0, min(cap, base * 2^attempt)].
 * Jitter keeps many processes from reconnecting to a restarted Redis in lockstep.
 */
export function reconnectDelay(attempt: number, baseDelayMs = 50, maxDelayMs = 5000): number {
  const ceiling = Math.min(maxDelayMs, baseDelayMs * 2 ** Math.min(attempt, 20));
  return Math.max(baseDelayMs, Math.floor(Math.random() * ceiling));
}

/**
 * Creates (but does not connect) a node-redis client for `url`, with jittered capped
 * reconnects that never give up. The caller owns the client: it must attach an `error`
 * listener (node-redis rethrows unhandled `error` events) and call `connect()`.
 */
export function createRedisClient(url: string, options: RedisClientOptions = {}): RedisClient {
  const { baseDelayMs = 50, maxDelayMs = 5000 } = options;
  return createClient({
    url,
    socket: {
      reconnectStrategy: (retries: number) => reconnectDelay(retries, baseDelayMs, maxDelayMs),
      connectTimeout: 5000,
    },
    // Commands issued while disconnected fail fast instead of queueing forever: a publish
    // must never make an HTTP request hang on a dead Redis.
    disableOfflineQueue: true,
  });
}
