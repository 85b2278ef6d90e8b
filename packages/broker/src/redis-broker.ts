import { silentLogger, type Logger } from '@repo/log';
import { closeRedisClient, createRedisClient, type RedisClient, type RedisClientOptions } from '@repo/redis';
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

interface RedisBrokerOptions {
  /** Connection for PUBLISH and the latest-value keys. */
  publisher: RedisClient;
  /** Dedicated connection in subscriber mode (RESP2 Pub/Sub takes a connection over). */
  subscriber: RedisClient;
  logger?: Logger;
}

/**
 * Redis Pub/Sub broker. It is handed its two clients, never creates them (so tests and
 * entry points own connection lifetime); `connectRedisBroker` builds both from a URL.
 *
 * Each channel is subscribed once per process; the broker's own handler table fans a message
 * out to local handlers. node-redis resubscribes the subscriber's channels itself after a
 * reconnect (covered by the Redis-restart test), so a restarted Redis loses only the messages
 * published while it was down.
 */
export class RedisBroker implements Broker {
  readonly kind = 'redis' as const;
  readonly #publisher: RedisClient;
  readonly #subscriber: RedisClient;
  readonly #logger: Logger;
  readonly #handlers: ChannelHandlers;
  readonly #status: BrokerStatus;
  readonly #dispatch = (message: string, channel: string) => this.#handlers.dispatch(channel, message);
  #closed = false;

  constructor(options: RedisBrokerOptions) {
    this.#publisher = options.publisher;
    this.#subscriber = options.subscriber;
    this.#logger = options.logger ?? silentLogger;
    this.#handlers = new ChannelHandlers(this.#logger);
    this.#status = new BrokerStatus(this.#logger, this.#publisher.isReady && this.#subscriber.isReady);
    for (const [role, client] of [
      ['publisher', this.#publisher],
      ['subscriber', this.#subscriber],
    ] as const) {
      // Without an 'error' listener node-redis rethrows and the process dies.
      client.on('error', (err: Error) => {
        this.#logger.warn({ role, err: err.message }, 'redis connection error');
        this.#refreshStatus();
      });
      client.on('ready', () => this.#refreshStatus());
      client.on('end', () => this.#refreshStatus());
      client.on('reconnecting', () => this.#refreshStatus());
    }
  }

  #refreshStatus(): void {
    this.#status.set(!this.#closed && this.#publisher.isReady && this.#subscriber.isReady);
  }

  async publish(channel: string, message: string): Promise<void> {
    this.#assertOpen();
    try {
      await this.#publisher.publish(channel, message);
    } catch (err) {
      throw redisCommandFailure('redis publish failed', err);
    }
  }

  async subscribe(channel: string, handler: MessageHandler): Promise<Unsubscribe> {
    this.#assertOpen();
    if (this.#handlers.add(channel, handler)) {
      try {
        await this.#subscriber.subscribe(channel, this.#dispatch);
      } catch (err) {
        this.#handlers.remove(channel, handler);
        throw new BrokerUnavailableError(`redis subscribe to ${channel} failed`, { cause: err });
      }
    }
    return async () => {
      if (this.#handlers.remove(channel, handler) && !this.#closed && this.#subscriber.isReady) {
        await this.#subscriber.unsubscribe(channel, this.#dispatch).catch(() => {});
      }
    };
  }

  async setLatest(key: string, value: string): Promise<void> {
    this.#assertOpen();
    try {
      await this.#publisher.set(key, value);
    } catch (err) {
      throw redisCommandFailure('redis set failed', err);
    }
  }

  /** A Lua compare-and-set (EVALSHA), so two publishers racing cannot move the value back. */
  async setLatestIfNewer(key: string, value: string, version: number): Promise<boolean> {
    this.#assertOpen();
    try {
      return await runSetIfNewer(this.#publisher, key, value, version);
    } catch (err) {
      throw redisCommandFailure('redis set failed', err);
    }
  }

  async deleteLatest(key: string): Promise<void> {
    this.#assertOpen();
    try {
      await this.#publisher.del(key);
    } catch (err) {
      throw redisCommandFailure('redis del failed', err);
    }
  }

  async getLatest(key: string): Promise<string | null> {
    this.#assertOpen();
    try {
      return await this.#publisher.get(key);
    } catch (err) {
      throw redisCommandFailure('redis get failed', err);
    }
  }

  async getLatestMany(keys: readonly string[]): Promise<(string | null)[]> {
    this.#assertOpen();
    if (keys.length === 0) return [];
    try {
      return await this.#publisher.mGet([...keys]);
    } catch (err) {
      throw redisCommandFailure('redis mget failed', err);
    }
  }

  isUp(): boolean {
    return this.#status.up;
  }

  onStatusChange(listener: (up: boolean) => void): () => void {
    return this.#status.onChange(listener);
  }

  /** Closes both connections. The broker owns them once it has been handed them. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#handlers.clear();
    this.#refreshStatus();
    await Promise.allSettled([closeRedisClient(this.#subscriber), closeRedisClient(this.#publisher)]);
  }

  #assertOpen(): void {
    if (this.#closed) throw new BrokerClosedError();
  }
}

/**
 * Connects a publisher and its `duplicate()` subscriber to `url` and returns the broker.
 * Rejects when Redis cannot be reached at start (after `connectTimeout`), so a misconfigured
 * `REDIS_URL` stops the process with a clear error instead of retrying silently forever.
 */
export async function connectRedisBroker(
  url: string,
  options: { logger?: Logger } & RedisClientOptions = {},
): Promise<RedisBroker> {
  const publisher = createRedisClient(url, options);
  const subscriber = publisher.duplicate();
  const broker = new RedisBroker({ publisher, subscriber, ...(options.logger ? { logger: options.logger } : {}) });
  try {
    await Promise.all([connectOnce(publisher), connectOnce(subscriber)]);
  } catch (err) {
    await broker.close();
    throw new BrokerUnavailableError(`cannot connect to Redis at ${redactUrl(url)}`, { cause: err });
  }
  return broker;
}

/** First connect: fail on the first error instead of entering the endless reconnect loop. */
function connectOnce(client: RedisClient): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const onError = (err: Error) => {
      client.off('error', onError);
      reject(err);
    };
    client.on('error', onError);
    client.connect().then(() => {
      client.off('error', onError);
      resolve();
    }, onError);
  });
}

/** Removes the password from a Redis URL before it is shown in an error. */
function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return '<invalid url>';
  }
}
