/**
 * @repo/events: the event shapes (zod schemas and their inferred types), the table of event
 * kinds, and decoding and validation. It depends on zod only, so browsers may import it; the
 * publishers and the price store live beside the broker, in `@repo/broker`.
 */
export {
  MAX_PORTFOLIO_ASSETS,
  symbol,
  type OrderFilledEvent,
  type OrderRejectedEvent,
  type PortfolioUpdateEvent,
  type PriceUpdateEvent,
  type SessionRevokedEvent,
  type WithOptionalTimestamp,
} from './types.ts';
export { EventValidationError } from './errors.ts';
export { CLIENT_EVENT_KINDS, EVENT_KINDS, type ClientEventKind, type EventKind, type EventOf } from './kinds.ts';
export { decodeEvent, MAX_EVENT_LENGTH } from './decode.ts';
export { validateEvent } from './validate.ts';
