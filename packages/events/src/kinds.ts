import type { z } from 'zod/v4';
import {
  OrderFilledEventSchema,
  OrderRejectedEventSchema,
  PortfolioUpdateEventSchema,
  PriceUpdateEventSchema,
  SessionRevokedEventSchema,
} from './types.ts';

/**
 * Each event kind with its schema: the one table publishers (validating) and gateways (decoding)
 * read. Which broker channel carries a kind is the broker's business (`EVENT_CHANNELS` in
 * `@repo/broker`), so this package stays free of anything a browser cannot load.
 */
export const EVENT_KINDS = {
  price: { schema: PriceUpdateEventSchema },
  order_filled: { schema: OrderFilledEventSchema },
  order_rejected: { schema: OrderRejectedEventSchema },
  portfolio: { schema: PortfolioUpdateEventSchema },
  session_revoked: { schema: SessionRevokedEventSchema },
} as const;

export type EventKind = keyof typeof EVENT_KINDS;
export type EventOf<K extends EventKind> = z.infer<(typeof EVENT_KINDS)[K]['schema']>;

/**
 * The kinds a gateway forwards to browsers. `session_revoked` is not among them: it tells the
 * gateways which sockets to cut, and no client ever sees it as an event.
 */
export const CLIENT_EVENT_KINDS = [
  'price',
  'order_filled',
  'order_rejected',
  'portfolio',
] as const satisfies readonly EventKind[];
export type ClientEventKind = (typeof CLIENT_EVENT_KINDS)[number];
