import { backoffDelay } from '@repo/retry';
import { createClient } from 'redis';

export type RedisClient = ReturnType<typeof createClient>;

export interface RedisClientOptions {
  /** Delay ceiling of the first reconnect, in ms (default 50). */
  baseDelayMs?: number;
  /** Upper bound of the reconnect delay, in ms (default 5000). */
  maxDelayMs?: number;
}

/**
 * Creates (but does not connect) a node-redis client for `url` that reconnects forever after a
 * full-jitter capped backoff (`backoffDelay` of `@repo/retry`): many processes that lost the same
 * Redis do not come back in lockstep. The caller owns the client: it must attach an `error`
 * listener (node-redis rethrows unhandled `error` events) and call `connect()`.
 */
export function createRedisClient(url: string, options: RedisClientOptions = {}): RedisClient {
  const backoff = { baseDelayMs: options.baseDelayMs ?? 50, maxDelayMs: options.maxDelayMs ?? 5000 };
  return createClient({
    url,
    socket: {
      reconnectStrategy: (retries: number) => backoffDelay(retries, backoff),
      connectTimeout: 5000,
    },
    // Commands issued while disconnected fail fast instead of queueing forever: a publish
    // must never make an HTTP request hang on a dead Redis.
    disableOfflineQueue: true,
  });
}
