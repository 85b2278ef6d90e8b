import type { Logger } from '@repo/log';

/**
 * Whether a Redis broker can publish and deliver, and who wants to know when that changes. The
 * brokers decide what "up" means; this keeps the flag, logs each change and tells the listeners.
 */
export class BrokerStatus {
  readonly #listeners = new Set<(up: boolean) => void>();
  readonly #logger: Logger;
  #up: boolean;

  constructor(logger: Logger, up: boolean) {
    this.#logger = logger;
    this.#up = up;
  }

  get up(): boolean {
    return this.#up;
  }

  /** Records `up`; when it changed, logs it and calls every listener. */
  set(up: boolean): void {
    if (up === this.#up) return;
    this.#up = up;
    this.#logger.info({ up }, up ? 'broker up' : 'broker down');
    for (const listener of this.#listeners) listener(up);
  }

  /** Calls `listener(up)` on each change. Returns a function that removes it. */
  onChange(listener: (up: boolean) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }
}
