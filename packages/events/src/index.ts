export * from './types.ts';
export { EventValidationError } from './errors.ts';
export { EVENT_KINDS, type EventKind, type EventOf } from './kinds.ts';
export { decodeEvent, MAX_EVENT_LENGTH, type DecodeResult } from './decode.ts';
export {
  createEventPublisher,
  createPriceStore,
  validateEvent,
  portfolioKey,
  type EventPublisher,
  type PriceStore,
} from './publish.ts';
