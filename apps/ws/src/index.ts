export { createGateway, type Gateway, type GatewayOptions } from './gateway.ts';
export { defaultLimits, InvalidLimitError, type GatewayLimits } from './limits.ts';
export type { Session, SessionVerifier } from './session.ts';
export type { HealthReport } from './http-routes.ts';
export { encodeTextFrame } from './text-frame.ts';
export { MemoryOrderHistory, type OrderHistory, type OrderHistoryPage, type HistoryEvent } from './order-history.ts';
export { defaultHistoryReadLimits, type HistoryReadLimits } from './history-reader.ts';
