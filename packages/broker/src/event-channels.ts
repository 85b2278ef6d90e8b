import type { EventKind } from '@repo/events';
import { redisKeys, type ChannelName } from '@repo/redis';

/**
 * The broker channel of each event kind: publishers publish a kind on it, gateways subscribe to
 * it and decode with that kind's schema, so a channel can never be paired with the wrong shape.
 */
export const EVENT_CHANNELS = {
  price: redisKeys.CHANNELS.priceUpdate(),
  order_filled: redisKeys.CHANNELS.orderFilled(),
  order_rejected: redisKeys.CHANNELS.orderRejected(),
  portfolio: redisKeys.CHANNELS.portfolioUpdate(),
  session_revoked: redisKeys.CHANNELS.sessionRevoked(),
} as const satisfies Record<EventKind, ChannelName>;
