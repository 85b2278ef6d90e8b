import type { Broker, Unsubscribe } from '@repo/broker';
import type { Logger } from '@repo/log';
import type { BrokerRoute } from './streams/stream.ts';

/**
 * The gateway's one door to broker subscriptions: each route's channel is subscribed once for
 * the whole process, however many sockets listen, and the broker's recoveries are reported.
 * Partitioned private channels (a Redis Cluster where a node follows only the partitions that
 * hold its authenticated users) would be a feed that subscribes as users come and go; the
 * channel kinds and their streams would not change.
 */
export class BrokerFeed {
  readonly #unsubscribes: Unsubscribe[];
  readonly #stopStatus: () => void;

  private constructor(unsubscribes: Unsubscribe[], stopStatus: () => void) {
    this.#unsubscribes = unsubscribes;
    this.#stopStatus = stopStatus;
  }

  /**
   * Subscribes every route; rejects (after undoing what it did) when one subscription fails.
   * `onResumed` runs each time the broker is back after an outage, when events may have been
   * published that this process never got.
   */
  static async start(
    broker: Broker,
    routes: readonly BrokerRoute[],
    options: { logger: Logger; onResumed: () => void },
  ): Promise<BrokerFeed> {
    const unsubscribes: Unsubscribe[] = [];
    try {
      for (const { channel, handler } of routes) unsubscribes.push(await broker.subscribe(channel, handler));
    } catch (err) {
      await Promise.allSettled(unsubscribes.map((unsubscribe) => unsubscribe()));
      throw err;
    }
    const stopStatus = broker.onStatusChange((up) => {
      options.logger.info({ up }, up ? 'broker up: catching up order streams' : 'broker down: live events paused');
      if (up) options.onResumed();
    });
    return new BrokerFeed(unsubscribes, stopStatus);
  }

  /** Stops listening. The broker itself stays open: its owner closes it. */
  async close(): Promise<void> {
    this.#stopStatus();
    await Promise.allSettled(this.#unsubscribes.map((unsubscribe) => unsubscribe()));
  }
}
