import type { Broker } from '@repo/broker';
import { createPriceStore, EVENT_KINDS, portfolioKey, type PriceUpdateEvent } from '@repo/events';
import { redisKeys } from '@repo/redis';
import { z } from 'zod';

/**
 * Everything the gateway needs to know of the broker's names and stored values, in one file:
 * the channel each event arrives on, where the latest prices and portfolios are kept, and the
 * shape of a revocation message.
 */

/** The broker channel of each event kind the gateway listens to. */
export const EVENT_CHANNELS = {
  price: EVENT_KINDS.price.channel,
  order_filled: EVENT_KINDS.order_filled.channel,
  order_rejected: EVENT_KINDS.order_rejected.channel,
  portfolio: EVENT_KINDS.portfolio.channel,
  session_revoked: redisKeys.CHANNELS.sessionRevoked(),
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
    portfolio: (userId) => broker.getLatest(portfolioKey(userId)),
  };
}

/** `{"sessionId":"…"}` on the revocation channel; other keys are ignored. */
const SessionRevokedSchema = z.object({ sessionId: z.string().min(1).max(256) });

/** Decodes a revocation message from the broker; null when it is malformed. Never throws. */
export function decodeSessionRevoked(raw: string): { sessionId: string } | null {
  let data: unknown;
  try {
    data = JSON.parse(raw);
  } catch {
    return null;
  }
  const parsed = SessionRevokedSchema.safeParse(data);
  return parsed.success ? parsed.data : null;
}
