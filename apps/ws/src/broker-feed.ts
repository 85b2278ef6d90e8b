import { PRIVATE_EVENT_KINDS, type Broker, type ChannelLayout, type Unsubscribe } from '@repo/broker';
import type { EventKind } from '@repo/events';
import type { Logger } from '@repo/log';
import type { GatewayMetrics } from './metrics.ts';
import type { BrokerRoute } from './streams/stream.ts';
import { UserPartitions, type PrivateRoutes } from './user-partitions.ts';

type Handler = (raw: string, channel: string) => void;

/**
 * The gateway's one door to broker subscriptions. Each channel is subscribed once for the whole
 * process, however many sockets listen, and the broker's recoveries are reported. Which
 * channels carry a kind is the layout's business:
 *
 * - prices: every configured symbol's channel, from start (one channel in the design layout);
 * - private kinds (orders, portfolio, revocations): the design's channels from start, or, in
 *   the partitioned layout, a user partition's channels while the gateway holds an
 *   authenticated socket of one of its users (`hold`/`release`, see `UserPartitions`).
 *
 * The channel kinds and their streams do not know which: they get each event of their kind.
 */
export class BrokerFeed {
  readonly #unsubscribes: Unsubscribe[];
  readonly #partitions: UserPartitions;
  readonly #stopStatus: () => void;

  private constructor(unsubscribes: Unsubscribe[], partitions: UserPartitions, stopStatus: () => void) {
    this.#unsubscribes = unsubscribes;
    this.#partitions = partitions;
    this.#stopStatus = stopStatus;
  }

  /**
   * Subscribes the prices of `symbols` and, in the design layout, the private channels; rejects
   * (after undoing what it did) when one subscription fails. `onResumed` runs each time the
   * broker is back after an outage, when events may have been published that this process
   * never got.
   */
  static async start(
    broker: Broker,
    routes: readonly BrokerRoute[],
    options: {
      layout: ChannelLayout;
      symbols: readonly string[];
      metrics: GatewayMetrics;
      logger: Logger;
      onResumed: () => void;
    },
  ): Promise<BrokerFeed> {
    const { layout, metrics } = options;
    const handlers = handlersByKind(routes, metrics);
    const unsubscribes: Unsubscribe[] = [];
    let partitions: UserPartitions | undefined;
    try {
      for (const channel of layout.priceChannels(options.symbols)) {
        unsubscribes.push(await broker.subscribe(channel, handlers.price));
      }
      const privateRoutes = Object.fromEntries(PRIVATE_EVENT_KINDS.map((kind) => [kind, handlers[kind]]));
      partitions = await UserPartitions.start(broker, layout, privateRoutes as PrivateRoutes);
    } catch (err) {
      await Promise.allSettled(unsubscribes.map((unsubscribe) => unsubscribe()));
      throw err;
    }
    const stopStatus = broker.onStatusChange((up) => {
      options.logger.info({ up }, up ? 'broker up: catching up order streams' : 'broker down: live events paused');
      if (up) options.onResumed();
    });
    return new BrokerFeed(unsubscribes, partitions, stopStatus);
  }

  /**
   * An authenticated socket of `userId` needs its private events: resolves once they reach this
   * process. True when they did not before (see `UserPartitions.hold`); rejects when the broker
   * cannot subscribe now.
   */
  hold(userId: number, since?: number): Promise<boolean> {
    return this.#partitions.hold(userId, since);
  }

  /** See `UserPartitions.mark`. */
  mark(): number {
    return this.#partitions.mark();
  }

  /** That socket left, or is no longer authenticated as `userId`. */
  release(userId: number): void {
    this.#partitions.release(userId);
  }

  /** The user partitions subscribed now (`[0]` in the design layout). */
  subscribedPartitions(): number[] {
    return this.#partitions.subscribed();
  }

  /** Stops listening. The broker itself stays open: its owner closes it. */
  async close(): Promise<void> {
    this.#stopStatus();
    await Promise.allSettled([this.#partitions.close(), ...this.#unsubscribes.map((unsubscribe) => unsubscribe())]);
  }
}

/** One handler per event kind (the routes of a kind in turn), each counting what it receives. */
function handlersByKind(routes: readonly BrokerRoute[], metrics: GatewayMetrics): Record<EventKind, Handler> {
  const byKind = new Map<EventKind, BrokerRoute['handler'][]>();
  for (const route of routes) byKind.set(route.kind, [...(byKind.get(route.kind) ?? []), route.handler]);
  const handlers = {} as Record<EventKind, Handler>;
  for (const kind of ['price', ...PRIVATE_EVENT_KINDS] as const) {
    const list = byKind.get(kind);
    if (!list) throw new Error(`no route handles ${kind} events`);
    const [only] = list;
    handlers[kind] =
      list.length === 1 && only
        ? (raw, channel) => {
            metrics.received(kind);
            only(raw, channel);
          }
        : (raw, channel) => {
            metrics.received(kind);
            for (const handler of list) handler(raw, channel);
          };
  }
  return handlers;
}
