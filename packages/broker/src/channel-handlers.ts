import type { Logger } from '@repo/log';
import type { MessageHandler } from './broker.ts';

/**
 * Handlers indexed by channel. Shared by both brokers so that one misbehaving handler
 * (a throw) is logged and cannot stop delivery to the others or crash the process.
 */
export class ChannelHandlers {
  readonly #byChannel = new Map<string, Set<MessageHandler>>();
  readonly #logger: Logger;

  constructor(logger: Logger) {
    this.#logger = logger;
  }

  /** Adds a handler; returns true when it is the first one for the channel. */
  add(channel: string, handler: MessageHandler): boolean {
    let set = this.#byChannel.get(channel);
    const first = set === undefined;
    if (!set) {
      set = new Set();
      this.#byChannel.set(channel, set);
    }
    set.add(handler);
    return first;
  }

  /** Removes a handler; returns true when the channel has no handler left. */
  remove(channel: string, handler: MessageHandler): boolean {
    const set = this.#byChannel.get(channel);
    if (!set) return false;
    set.delete(handler);
    if (set.size > 0) return false;
    this.#byChannel.delete(channel);
    return true;
  }

  has(channel: string): boolean {
    return this.#byChannel.has(channel);
  }

  channels(): string[] {
    return [...this.#byChannel.keys()];
  }

  dispatch(channel: string, message: string): void {
    const set = this.#byChannel.get(channel);
    if (!set) return;
    for (const handler of set) {
      try {
        handler(message, channel);
      } catch (err) {
        this.#logger.error({ err, channel }, 'broker message handler threw');
      }
    }
  }

  clear(): void {
    this.#byChannel.clear();
  }
}
