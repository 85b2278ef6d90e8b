import calculateSlot from 'cluster-key-slot';
import { silentLogger, type Logger } from '@repo/log';
import { createRedisClusterClient, type RedisClientOptions, type RedisClusterClient } from '@repo/redis';
import { backoffDelay, withTimeout } from '@repo/retry';
import {
  BrokerClosedError,
  BrokerUnavailableError,
  type Broker,
  type MessageHandler,
  type Unsubscribe,
} from './broker.ts';
import { BrokerStatus } from './broker-status.ts';
import { ChannelHandlers } from './channel-handlers.ts';
import { runSetIfNewer } from './latest-version.ts';
import { redisCommandFailure } from './redis-errors.ts';

interface RedisClusterBrokerOptions {
  /** A connected cluster client: SPUBLISH and the keys go through it, SSUBSCRIBE through its shard connections. */
  cluster: RedisClusterClient;
  logger?: Logger;
  /** Longest wait for one SSUBSCRIBE or SUNSUBSCRIBE, in ms (default 5000). */
  subscribeTimeoutMs?: number;
  /** Delay ceiling of the first topology refresh after a node fails, in ms (default 50). */
  refreshBaseDelayMs?: number;
  /** Longest delay between topology refreshes while a node is down, in ms (default 1000). */
  refreshMaxDelayMs?: number;
  /** How often every subscribed channel is checked to be live at its slot's master, in ms (default 1000). */
  checkIntervalMs?: number;
}

/**
 * Longest wait for one command's reply. A master that stops answering (hung, or its host gone
 * without a reset while its replica is promoted) keeps its connection "ready" until the
 * connection's idle timeout, or for ever while other commands keep writing to it; a missed
 * deadline counts as trouble, whose heal reloads the slot map and so moves to the new master.
 * 5 s, like the connections' idle timeout: far beyond any healthy reply.
 */
const COMMAND_TIMEOUT_MS = 5000;

/** node-redis's name for the sharded listeners of a connection. */
const SHARDED = 'SHARDED' as const;
/** The cluster client's internal event that hands over the channels of a moved connection. */
const RESUBSCRIBE_EVENT = '__resubscribeListeners';
/** What a node-redis client emits when its resubscription after a reconnect is answered `MOVED`. */
const MOVED_EVENT = '__MOVED';

/**
 * Redis Cluster broker on sharded Pub/Sub (Redis 7): SPUBLISH goes to the master that owns the
 * channel's slot, and SSUBSCRIBE to that master, so a channel's traffic stays on its shard instead
 * of being copied to every node as cluster-wide PUBLISH is. It is handed its cluster client and
 * never creates one; `connectRedisClusterBroker` builds it from node addresses.
 *
 * node-redis 5 follows `MOVED` replies, but refreshes its slot map only when one arrives, and
 * when a refresh drops a failed master it destroys that master's subscriber connection with its
 * channels. A killed master answers nothing, so this broker heals the topology itself: when a
 * node connection fails it refreshes the slot map (full-jitter backoff, capped) until every
 * master is reachable again, then resubscribes each of its channels that is no longer live on
 * its slot's current master. It reports down from the first node failure until that is done,
 * so a gateway catches up from history only once live delivery is whole again.
 */
export class RedisClusterBroker implements Broker {
  readonly kind = 'redis-cluster' as const;
  readonly #cluster: RedisClusterClient;
  readonly #logger: Logger;
  readonly #handlers: ChannelHandlers;
  readonly #dispatch = (message: string, channel: string) => this.#handlers.dispatch(channel, message);
  readonly #subscribeTimeoutMs: number;
  readonly #refreshBackoff: { baseDelayMs: number; maxDelayMs: number };
  /** Per channel, the last subscription change queued: changes of one channel run one at a time. */
  readonly #channelOps = new Map<string, Promise<void>>();
  readonly #status: BrokerStatus;
  #closed = false;
  #healing: Promise<void> | null = null;
  #wakeHealer: (() => void) | null = null;
  /** Subscriber connections whose server-side unsubscribes are watched. */
  readonly #watched = new WeakSet<object>();
  readonly #checkTimer: NodeJS.Timeout;

  constructor(options: RedisClusterBrokerOptions) {
    this.#cluster = options.cluster;
    this.#logger = options.logger ?? silentLogger;
    this.#handlers = new ChannelHandlers(this.#logger);
    this.#subscribeTimeoutMs = options.subscribeTimeoutMs ?? 5000;
    this.#refreshBackoff = {
      baseDelayMs: options.refreshBaseDelayMs ?? 50,
      maxDelayMs: options.refreshMaxDelayMs ?? 1000,
    };
    // Without 'error' listeners node-redis rethrows and the process dies: discovery errors come
    // as 'error', each node connection's as 'node-error'.
    this.#cluster.on('error', (err: Error) =>
      this.#logger.debug({ err: err.message }, 'redis cluster discovery error'),
    );
    this.#cluster.on('node-error', (err: Error, node: { host: string; port: number }) => {
      this.#logger.warn({ node: `${node.host}:${node.port}`, err: err.message }, 'redis cluster node error');
      this.#trouble();
    });
    // node-redis 5 spells this event 'sharded-shannel-moved-error'; later versions fix the name.
    for (const event of ['sharded-shannel-moved-error', 'sharded-channel-moved-error']) {
      this.#cluster.on(event, (err: Error, channel: string) => {
        this.#logger.warn({ channel, err: err.message }, 'redis cluster could not move a channel');
        this.#trouble();
      });
    }
    // A connection that ends is trouble only when something needed is missing: node-redis also
    // ends a master's subscriber connection when its last channel is unsubscribed.
    for (const event of ['node-reconnecting', 'node-disconnect']) {
      this.#cluster.on(event, () => this.#trouble({ unlessHealthy: true }));
    }
    // When a subscriber connection meets `MOVED`, node-redis takes its channels off it and
    // resubscribes them without catching a failure, which would be an unhandled rejection that
    // ends the process. The heal resubscribes them instead, with retries and status reporting.
    this.#cluster.removeAllListeners(RESUBSCRIBE_EVENT);
    this.#cluster.on(RESUBSCRIBE_EVENT, () => this.#trouble());
    this.#cluster.on('node-ready', () => this.#refreshStatus());
    this.#status = new BrokerStatus(this.#logger, this.#healthy());
    // The backstop for every way a subscription can vanish without an event reaching this
    // broker: a channel that has handlers but is not live at its master starts a heal.
    this.#checkTimer = setInterval(() => {
      if (this.#healing || !this.#cluster.isOpen) return;
      if (!this.#healthy()) this.#trouble();
      else this.#dropUnwanted();
    }, options.checkIntervalMs ?? 1000);
    this.#checkTimer.unref();
  }

  async publish(channel: string, message: string): Promise<void> {
    await this.#command('redis cluster publish failed', () => this.#cluster.sPublish(channel, message));
  }

  async subscribe(channel: string, handler: MessageHandler): Promise<Unsubscribe> {
    this.#assertOpen();
    this.#handlers.add(channel, handler);
    try {
      await this.#sync(channel);
    } catch (err) {
      this.#handlers.remove(channel, handler);
      // An SSUBSCRIBE that timed out may still land: sync again so it does not linger.
      void this.#sync(channel).catch(() => {});
      this.#trouble();
      throw new BrokerUnavailableError(`redis cluster subscribe to ${channel} failed`, { cause: err });
    }
    return async () => {
      if (!this.#handlers.remove(channel, handler) || this.#closed) return;
      // A failed unsubscribe leaves a channel nobody listens to; the next heal drops it.
      await this.#sync(channel).catch(() => {});
    };
  }

  async setLatest(key: string, value: string): Promise<void> {
    await this.#command('redis cluster set failed', () => this.#cluster.set(key, value));
  }

  /** The same Lua compare-and-set as `RedisBroker`: it touches one key, so it runs at that key's slot. */
  setLatestIfNewer(key: string, value: string, version: number): Promise<boolean> {
    return this.#command('redis cluster set failed', () => runSetIfNewer(this.#cluster, key, value, version));
  }

  async deleteLatest(key: string): Promise<void> {
    await this.#command('redis cluster del failed', () => this.#cluster.del(key));
  }

  getLatest(key: string): Promise<string | null> {
    return this.#command('redis cluster get failed', () => this.#cluster.get(key));
  }

  /** One GET per key, sent together: the keys live on different slots, and MGET spans one slot only. */
  getLatestMany(keys: readonly string[]): Promise<(string | null)[]> {
    return this.#command('redis cluster get failed', () => Promise.all(keys.map((key) => this.#cluster.get(key))));
  }

  /**
   * Runs one command with a deadline. A failure of the connection or the node (no reply in
   * time included) starts a heal; a command Redis answered with an error (`WRONGTYPE`, `OOM`)
   * is about the command, not the topology, and only rejects.
   */
  async #command<T>(what: string, run: () => Promise<T>): Promise<T> {
    this.#assertOpen();
    try {
      return await withTimeout(run(), COMMAND_TIMEOUT_MS, 'the reply');
    } catch (err) {
      const failure = redisCommandFailure(what, err);
      if (failure instanceof BrokerUnavailableError) this.#trouble();
      throw failure;
    }
  }

  isUp(): boolean {
    return this.#status.up;
  }

  onStatusChange(listener: (up: boolean) => void): () => void {
    return this.#status.onChange(listener);
  }

  /** Closes the cluster client (every node connection). The broker owns it once handed it. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#checkTimer);
    this.#handlers.clear();
    this.#wakeHealer?.();
    this.#refreshStatus();
    await closeCluster(this.#cluster);
  }

  #assertOpen(): void {
    if (this.#closed) throw new BrokerClosedError();
  }

  /**
   * Brings one channel's Redis subscription in line with the handler table: SSUBSCRIBE on its
   * slot's master when it has handlers and is not live there, SUNSUBSCRIBE when it has none.
   * Changes of one channel are queued, so a subscribe never races an unsubscribe.
   */
  #sync(channel: string): Promise<void> {
    const previous = this.#channelOps.get(channel) ?? Promise.resolve();
    const op = previous
      .catch(() => {})
      .then(async () => {
        if (this.#closed) return;
        const wanted = this.#handlers.has(channel);
        if (wanted === this.#isLive(channel)) {
          // Live on a connection node-redis subscribed by itself (a channel it moved after a
          // failover): that connection needs the same watch.
          if (wanted) this.#watchSubscriber(channel);
          return;
        }
        const command = wanted
          ? this.#cluster.sSubscribe(channel, this.#dispatch)
          : this.#cluster.sUnsubscribe(channel, this.#dispatch);
        await withTimeout(command, this.#subscribeTimeoutMs, `${wanted ? 'SSUBSCRIBE' : 'SUNSUBSCRIBE'} ${channel}`);
        if (wanted) this.#watchSubscriber(channel);
      })
      .finally(() => {
        if (this.#channelOps.get(channel) === op) this.#channelOps.delete(channel);
      });
    this.#channelOps.set(channel, op);
    return op;
  }

  /**
   * A master that loses a slot (a manual failover, a slot migration) unsubscribes the slot's
   * channels itself. node-redis 5 takes the channels off the connection but, listening for an
   * event name its connections never emit, does not subscribe them anywhere else: heal instead.
   *
   * A subscriber connection whose resubscription after a reconnect is answered `MOVED` (its
   * node lost the slot meanwhile) emits `__MOVED` with its channels taken off. node-redis's own
   * listener awaits a rediscovery without a catch: when no node answers (a whole cluster
   * restarting, or a close during a failover) that is an unhandled rejection, which ends the
   * process. Replaced by the heal, which rediscovers with retries and resubscribes.
   */
  #watchSubscriber(channel: string): void {
    const subscriber = this.#subscriberOf(channel);
    if (!subscriber || this.#watched.has(subscriber)) return;
    this.#watched.add(subscriber);
    subscriber.on('sharded-channel-moved', (moved: string) => {
      this.#logger.info({ channel: moved }, 'redis cluster moved a channel away from its master');
      this.#trouble();
    });
    subscriber.removeAllListeners(MOVED_EVENT);
    subscriber.on(MOVED_EVENT, () => {
      this.#logger.info('a redis cluster subscriber was answered MOVED on resubscribing');
      this.#trouble();
    });
  }

  /**
   * Unsubscribes channels still subscribed at a master with no handler left. An unsubscribe
   * while the shard's connection was reconnecting found nothing live to drop, and node-redis,
   * which still listed the channel, subscribed it again on reconnecting: without this the
   * gateway would go on receiving a partition it no longer holds until the next heal.
   */
  #dropUnwanted(): void {
    for (const channel of this.#subscribedChannels()) {
      if (!this.#handlers.has(channel) && !this.#channelOps.has(channel)) void this.#sync(channel).catch(() => {});
    }
  }

  /** Every channel subscribed on a subscriber connection of a current master. */
  #subscribedChannels(): string[] {
    return this.#cluster.masters.flatMap((master) => [
      ...(master.pubSub?.client.getPubSubListeners(SHARDED).keys() ?? []),
    ]);
  }

  #subscriberOf(channel: string) {
    return this.#cluster.slots[calculateSlot(channel)]?.master.pubSub?.client;
  }

  /** Whether `channel` is subscribed, on a ready connection, at the master that owns its slot now. */
  #isLive(channel: string): boolean {
    const subscriber = this.#subscriberOf(channel);
    return subscriber !== undefined && subscriber.isReady && subscriber.getPubSubListeners(SHARDED).has(channel);
  }

  /** Every master reachable and every channel with handlers live at its master (channels being changed aside). */
  #healthy(): boolean {
    if (this.#closed || !this.#cluster.isOpen) return false;
    const masters = this.#cluster.masters;
    if (masters.length === 0 || masters.some((master) => !master.client?.isReady)) return false;
    return this.#handlers.channels().every((channel) => this.#channelOps.has(channel) || this.#isLive(channel));
  }

  #refreshStatus(): void {
    this.#status.set(this.#healthy());
  }

  /**
   * Something failed: report it and heal, unless a heal is already running (or, with
   * `unlessHealthy`, every master and channel is fine after all).
   */
  #trouble({ unlessHealthy = false } = {}): void {
    this.#refreshStatus();
    if (this.#closed || this.#healing || (unlessHealthy && this.#status.up)) return;
    this.#healing = this.#heal().finally(() => {
      this.#healing = null;
      // A failure during the last pass's final check.
      if (!this.#closed && !this.#healthy()) this.#trouble();
    });
  }

  /**
   * Refreshes the slot map until every master is reachable (a failed master's replica is promoted
   * after the cluster's node timeout), then resubscribes what the refresh dropped.
   */
  async #heal(): Promise<void> {
    for (let attempt = 0; !this.#closed; attempt++) {
      await this.#pause(backoffDelay(attempt, this.#refreshBackoff));
      if (this.#closed) return;
      try {
        await withTimeout(this.#refreshTopology(), this.#subscribeTimeoutMs, 'cluster topology refresh');
      } catch (err) {
        this.#logger.debug({ err: (err as Error).message }, 'cluster topology refresh failed');
        continue;
      }
      if (this.#cluster.masters.some((master) => !master.client?.isReady)) continue;
      // Channels with handlers, and channels subscribed that have none left (an unsubscribe
      // that failed while a shard was down).
      const channels = [...new Set([...this.#handlers.channels(), ...this.#subscribedChannels()])];
      const results = await Promise.allSettled(channels.map((channel) => this.#sync(channel)));
      const failed = results.filter((r) => r.status === 'rejected').length;
      if (failed > 0) {
        this.#logger.debug({ failed }, 'resubscription after a topology change incomplete');
        continue;
      }
      this.#refreshStatus();
      if (this.#status.up) {
        this.#logger.info({ attempts: attempt + 1, channels: channels.length }, 'redis cluster healed');
        return;
      }
    }
  }

  /**
   * Reloads the slot map (CLUSTER SLOTS) from a master that answers, else from the root nodes.
   * node-redis has no public call for it; `rediscover` is what it runs itself on `MOVED`.
   */
  async #refreshTopology(): Promise<void> {
    const ready = this.#cluster.masters.find((master) => master.client?.isReady)?.client;
    const start = ready ?? this.#cluster.masters.find((master) => master.client)?.client;
    if (!start) throw new Error('no node client to start the topology refresh from');
    const refresh = this.#cluster._slots.rediscover(start);
    // A refresh still running when the broker closes opens connections to the masters it finds,
    // after close() let go of the others: they would reconnect for ever. Drop them.
    refresh.then(
      () => this.#closed && this.#cluster.destroy(),
      () => this.#closed && this.#cluster.destroy(),
    );
    await refresh;
  }

  /** Waits `ms`, or less when the broker is closed. */
  #pause(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.#wakeHealer = done;
    }).finally(() => {
      this.#wakeHealer = null;
    });
  }
}

async function closeCluster(cluster: RedisClusterClient): Promise<void> {
  if (!cluster.isOpen) return;
  try {
    // Close waits for replies in flight; a node that is down would make it wait forever.
    await withTimeout(cluster.close(), 2000, 'redis cluster close');
  } catch {
    cluster.destroy();
  }
}

/**
 * Connects a cluster client to the Redis Cluster reachable at `nodes` (`host:port` each) and
 * returns the broker. Rejects when no node answers, or the topology cannot be loaded, within
 * `connectTimeoutMs` (default 10 s), so a wrong `REDIS_CLUSTER_NODES` stops the process with a
 * clear error instead of retrying silently forever.
 */
export async function connectRedisClusterBroker(
  nodes: readonly string[],
  options: { logger?: Logger; connectTimeoutMs?: number } & RedisClientOptions &
    Omit<RedisClusterBrokerOptions, 'cluster' | 'logger'> = {},
): Promise<RedisClusterBroker> {
  const cluster = createRedisClusterClient(nodes, options);
  const broker = new RedisClusterBroker({ ...options, cluster });
  try {
    await withTimeout(cluster.connect(), options.connectTimeoutMs ?? 10_000, 'redis cluster connect');
  } catch (err) {
    await broker.close();
    cluster.destroy();
    throw new BrokerUnavailableError(`cannot connect to the Redis Cluster at ${nodes.join(',')}`, { cause: err });
  }
  return broker;
}
