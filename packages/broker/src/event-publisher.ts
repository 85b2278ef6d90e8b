import {
  validateEvent,
  type EventKind,
  type EventOf,
  type OrderFilledEvent,
  type OrderRejectedEvent,
  type PortfolioUpdateEvent,
  type PriceUpdateEvent,
  type SessionRevokedEvent,
  type WithOptionalTimestamp,
} from '@repo/events';
import { redisKeys } from '@repo/redis';
import { BrokerCommandError, type Broker } from './broker.ts';
import { DESIGN_CHANNEL_LAYOUT, type ChannelLayout } from './channel-layout.ts';

/**
 * The design's `publish*()` functions. Each validates its event (throwing `EventValidationError`
 * from `@repo/events`, and publishing nothing, when it does not fit), fills a missing
 * `timestamp`, publishes it on its kind's channel and resolves with the event as published.
 */
export interface EventPublisher {
  /** Publishes `{symbol, price, timestamp}` on `trading:events:price:update` (design layout). */
  publishPriceUpdate(symbol: string, price: string, timestamp?: string): Promise<PriceUpdateEvent>;
  publishOrderFilled(event: WithOptionalTimestamp<OrderFilledEvent>): Promise<OrderFilledEvent>;
  publishOrderRejected(event: WithOptionalTimestamp<OrderRejectedEvent>): Promise<OrderRejectedEvent>;
  /**
   * Publishes the portfolio and keeps it as the user's latest, for the gateway's snapshot, unless
   * the stored one has a `version` at least as high (a portfolio without `version` always replaces it).
   * When Redis refuses the key itself (`BrokerCommandError` with `keyBound`: a value of another
   * type there) the portfolio is still published, then that error is thrown.
   */
  publishPortfolioUpdate(event: WithOptionalTimestamp<PortfolioUpdateEvent>): Promise<PortfolioUpdateEvent>;
  /**
   * Tells the gateway nodes that `sessionId` ended: its sockets lose their private channels. In
   * the partitioned layout it goes to the partition of `userId`; without one, to every partition.
   */
  publishSessionRevoked(event: SessionRevokedEvent): Promise<SessionRevokedEvent>;
}

/**
 * The publisher bound to `broker`. No client is created on import: whoever owns the broker (an
 * entry point, a test) makes the publisher. `layout` picks each event's channel (default the
 * design's names; `partitionedChannelLayout` in Redis Cluster mode). `now` is the clock for
 * missing timestamps.
 */
export function createEventPublisher(
  broker: Broker,
  options: { now?: () => Date; layout?: ChannelLayout } = {},
): EventPublisher {
  const now = options.now ?? (() => new Date());
  const layout = options.layout ?? DESIGN_CHANNEL_LAYOUT;
  async function send<K extends EventKind>(kind: K, event: EventOf<K>, raw: string): Promise<void> {
    for (const channel of layout.channelsFor(kind, event)) await broker.publish(channel, raw);
  }
  async function publish<K extends EventKind>(kind: K, input: unknown): Promise<EventOf<K>> {
    const event = validateEvent(kind, input, now);
    await send(kind, event, JSON.stringify(event));
    return event;
  }
  return {
    publishPriceUpdate: (symbol, price, timestamp) => publish('price', { symbol, price, timestamp }),
    publishOrderFilled: (event) => publish('order_filled', event),
    publishOrderRejected: (event) => publish('order_rejected', event),
    publishPortfolioUpdate: async (input) => {
      const event = validateEvent('portfolio', input, now);
      const raw = JSON.stringify(event);
      // Relays of several API processes may store one user's portfolios out of order: a stored
      // version is only ever replaced by a newer one. The publish still happens (gateways drop
      // a stale version themselves).
      const key = redisKeys.portfolio(event.userId);
      let refused: BrokerCommandError | undefined;
      try {
        await (event.version === undefined
          ? broker.setLatest(key, raw)
          : broker.setLatestIfNewer(key, raw, event.version));
      } catch (err) {
        if (!(err instanceof BrokerCommandError && err.keyBound)) throw err;
        // A broken key costs the snapshot only: the user's sockets still get the portfolio.
        refused = err;
      }
      await send('portfolio', event, raw);
      if (refused) throw refused;
      return event;
    },
    publishSessionRevoked: (event) => publish('session_revoked', event),
  };
}
