export { createGateway, type Gateway, type GatewayOptions } from './gateway.ts';
export { defaultLimits, InvalidLimitError, type GatewayLimits } from './limits.ts';
export type { Session, SessionVerifier } from './session/session.ts';
export type { HealthReport } from './http-routes.ts';
export { encodeTextFrame } from './transport/text-frame.ts';
export type { OrderHistory, OrderHistoryPage } from './streams/order-history.ts';
export { defaultHistoryReadLimits, type HistoryReadLimits } from './streams/history-reader.ts';
