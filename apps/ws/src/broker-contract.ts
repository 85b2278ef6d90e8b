import { createPriceStore, EVENT_CHANNELS as BROKER_EVENT_CHANNELS, type Broker } from '@repo/broker';
import { decodeEvent, type PriceUpdateEvent } from '@repo/events';
import { redisKeys } from '@repo/redis';

/**
 * Everything the gateway needs to know of the broker's names and stored values, in one file:
 * the channel each event arrives on, where the latest prices and portfolios are kept, and the
 * shape of a revocation message.
 */

/** The broker channel of each event kind the gateway listens to. */
export const EVENT_CHANNELS = {
  price: BROKER_EVENT_CHANNELS.price,
  order_filled: BROKER_EVENT_CHANNELS.order_filled,
  order_rejected: BROKER_EVENT_CHANNELS.order_rejected,
  portfolio: BROKER_EVENT_CHANNELS.portfolio,
  session_revoked: BROKER_EVENT_CHANNELS.session_revoked,
} as const;

/** The latest values snapshots are made of, read from the broker's latest-value store. */
export interface LatestValues {
  /** The latest prices of `symbols` that are known (decoded, invalid ones left out). */
  readonly prices: (symbols: readonly string[]) => Promise<PriceUpdateEvent[]>;
  /** The raw JSON of the user's latest portfolio, null when none is kept. */
  readonly portfolio: (userId: number) => Promise<string | null>;
}

export function latestValues(broker: Broker): LatestValues {
  const prices = createPriceStore(broker);
  return {
    prices: (symbols) => prices.getPrices(symbols),
    portfolio: (userId) => broker.getLatest(redisKeys.portfolio(userId)),
  };
}

/** Decodes a revocation message from the broker; null when it is malformed. Never throws. */
export function decodeSessionRevoked(raw: string): { sessionId: string } | null {
  const decoded = decodeEvent('session_revoked', raw);
  return decoded.ok ? decoded.event : null;
}
