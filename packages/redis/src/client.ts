import { backoffDelay, withTimeout } from '@repo/retry';
import { createClient, createCluster } from 'redis';

export type RedisClient = ReturnType<typeof createClient>;
export type RedisClusterClient = ReturnType<typeof createCluster>;

export interface RedisClientOptions {
  /** Delay ceiling of the first reconnect, in ms (default 50). */
  baseDelayMs?: number;
  /** Upper bound of the reconnect delay, in ms (default 5000). */
  maxDelayMs?: number;
}

/**
 * A connection PINGs its server this long after the last PING was answered (node-redis
 * `pingInterval`; a RESP2 subscriber may PING too, node-redis reads its `pong` reply). An idle
 * healthy connection thus always sees a reply well inside `SOCKET_IDLE_TIMEOUT_MS`.
 */
export const PING_INTERVAL_MS = 1000;

/**
 * A connection on which nothing was sent or received for this long is destroyed (node-redis
 * `socket.socketTimeout`): its commands in flight fail, it reports not ready and reconnects.
 * This is what notices a Redis that stopped answering (a hung process, a host gone without a
 * reset) before TCP gives up, which takes ~15 min with data in flight. A PING that gets no
 * reply is not sent again, so a silent server leaves the socket idle, unless the application
 * keeps writing to it: callers that do bound their own waits (the outbox relay's deadline).
 * 5 s tolerates a Redis stalled by a slow command or a fork on a loaded box. node-redis's
 * per-command `timeout` would not do: it only covers the wait before the command is written.
 */
export const SOCKET_IDLE_TIMEOUT_MS = 5000;

/** What every connection shares, to one Redis or to each node of a cluster. */
function connectionDefaults(options: RedisClientOptions) {
  const backoff = { baseDelayMs: options.baseDelayMs ?? 50, maxDelayMs: options.maxDelayMs ?? 5000 };
  return {
    socket: {
      reconnectStrategy: (retries: number) => backoffDelay(retries, backoff),
      connectTimeout: 5000,
      socketTimeout: SOCKET_IDLE_TIMEOUT_MS,
    },
    pingInterval: PING_INTERVAL_MS,
    // Commands issued while disconnected fail fast instead of queueing forever: a publish
    // must never make an HTTP request hang on a dead Redis.
    disableOfflineQueue: true,
  };
}

/**
 * Creates (but does not connect) a node-redis client for `url` that reconnects forever after a
 * full-jitter capped backoff (`backoffDelay` of `@repo/retry`): many processes that lost the same
 * Redis do not come back in lockstep. The caller owns the client: it must attach an `error`
 * listener (node-redis rethrows unhandled `error` events) and call `connect()`.
 */
export function createRedisClient(url: string, options: RedisClientOptions = {}): RedisClient {
  return createClient({ url, ...connectionDefaults(options) });
}

/**
 * Creates (but does not connect) a node-redis cluster client that discovers the topology from
 * `nodes` (`host:port` each; any reachable one will do). Every node connection gets the same
 * fail-fast, jittered-reconnect behaviour as `createRedisClient`. Masters only: node-redis counts
 * SPUBLISH and GET as read-only and would otherwise send them to replicas. The caller owns the
 * client: it must attach `error` and `node-error` listeners and call `connect()`.
 */
export function createRedisClusterClient(
  nodes: readonly string[],
  options: RedisClientOptions = {},
): RedisClusterClient {
  if (nodes.length === 0) throw new RangeError('a Redis Cluster needs at least one node address');
  return createCluster({
    rootNodes: nodes.map((node) => ({ socket: parseNodeAddress(node) })),
    defaults: connectionDefaults(options),
    useReplicas: false,
  });
}

/** `host:port` (IPv6 as `[::1]:7000`) to a socket address. Throws `RangeError` naming the bad entry. */
export function parseNodeAddress(node: string): { host: string; port: number } {
  const match = /^(?:\[([0-9A-Fa-f:.]+)\]|([^\s:[\]]+)):(\d{1,5})$/.exec(node.trim());
  const port = match ? Number(match[3]) : NaN;
  if (!match || !(port >= 1 && port <= 65535)) {
    throw new RangeError(`"${node}" is not a host:port address`);
  }
  return { host: match[1] ?? match[2]!, port };
}

/**
 * Longest wait for a closing client's pending replies: a Redis that stopped answering (hung, or
 * its host gone without a reset) while the connection still looked ready would otherwise hold
 * a shutdown for ever. Then the connection is dropped instead.
 */
const CLOSE_TIMEOUT_MS = 2000;

/** Closes `client` in bounded time, whatever state its connection is in; never throws. */
export async function closeRedisClient(client: RedisClient, timeoutMs = CLOSE_TIMEOUT_MS): Promise<void> {
  if (!client.isOpen) return;
  // A connection that is not ready would wait for a reconnect that may never come.
  if (!client.isReady) {
    client.destroy();
    return;
  }
  // Past the timeout the connection is left to its socket timeout (SOCKET_IDLE_TIMEOUT_MS),
  // which ends it and fails what was pending: close() has already marked the client closed,
  // and destroy() refuses a closed client.
  await withTimeout(client.close(), timeoutMs, 'redis close').catch(() => {});
}
