import { silentLogger, type Logger } from '@repo/log';
import { BrokerClosedError, type Broker, type MessageHandler, type Unsubscribe } from './broker.ts';
import { ChannelHandlers } from './channel-handlers.ts';
import { replacesStored } from './latest-version.ts';

/**
 * In-process broker: the base contract, used when `REDIS_URL` is unset so that one process
 * runs everything. Messages are delivered on a later microtask, like Redis would deliver them
 * later, so a publisher never runs subscriber code inside its own call stack.
 */
export class MemoryBroker implements Broker {
  readonly kind = 'memory' as const;
  readonly #handlers: ChannelHandlers;
  readonly #latest = new Map<string, string>();
  #closed = false;

  // The Broker interface is asynchronous for Redis; in memory every method completes at once.
  /* eslint-disable @typescript-eslint/require-await */
  constructor(options: { logger?: Logger } = {}) {
    this.#handlers = new ChannelHandlers(options.logger ?? silentLogger);
  }

  async publish(channel: string, message: string): Promise<void> {
    if (this.#closed) throw new BrokerClosedError();
    queueMicrotask(() => this.#handlers.dispatch(channel, message));
  }

  async subscribe(channel: string, handler: MessageHandler): Promise<Unsubscribe> {
    if (this.#closed) throw new BrokerClosedError();
    this.#handlers.add(channel, handler);
    return async () => {
      this.#handlers.remove(channel, handler);
    };
  }

  async setLatest(key: string, value: string): Promise<void> {
    if (this.#closed) throw new BrokerClosedError();
    this.#latest.set(key, value);
  }

  async setLatestIfNewer(key: string, value: string, version: number): Promise<boolean> {
    if (this.#closed) throw new BrokerClosedError();
    if (!replacesStored(this.#latest.get(key), version)) return false;
    this.#latest.set(key, value);
    return true;
  }

  async deleteLatest(key: string): Promise<void> {
    if (this.#closed) throw new BrokerClosedError();
    this.#latest.delete(key);
  }

  async getLatest(key: string): Promise<string | null> {
    return this.#latest.get(key) ?? null;
  }

  async getLatestMany(keys: readonly string[]): Promise<(string | null)[]> {
    return keys.map((key) => this.#latest.get(key) ?? null);
  }

  isUp(): boolean {
    return !this.#closed;
  }

  onStatusChange(_listener: (up: boolean) => void): () => void {
    // Always up until closed; nothing to report.
    return () => {};
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#handlers.clear();
  }
  /* eslint-enable @typescript-eslint/require-await */
}
