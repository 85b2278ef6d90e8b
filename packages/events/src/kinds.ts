import type { z } from 'zod/v4';
import { redisKeys } from '@repo/redis';
import {
  OrderFilledEventSchema,
  OrderRejectedEventSchema,
  PortfolioUpdateEventSchema,
  PriceUpdateEventSchema,
} from './types.ts';

/**
 * Each event kind with its Redis channel and schema: the one table both publishers and the
 * gateway read, so a channel can never be paired with the wrong shape.
 */
export const EVENT_KINDS = {
  price: { channel: redisKeys.CHANNELS.priceUpdate(), schema: PriceUpdateEventSchema },
  order_filled: { channel: redisKeys.CHANNELS.orderFilled(), schema: OrderFilledEventSchema },
  order_rejected: { channel: redisKeys.CHANNELS.orderRejected(), schema: OrderRejectedEventSchema },
  portfolio: { channel: redisKeys.CHANNELS.portfolioUpdate(), schema: PortfolioUpdateEventSchema },
} as const;

export type EventKind = keyof typeof EVENT_KINDS;
export type EventOf<K extends EventKind> = z.infer<(typeof EVENT_KINDS)[K]['schema']>;
