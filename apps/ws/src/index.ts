export { createGateway, type Gateway, type GatewayOptions } from './gateway.ts';
export { defaultLimits, InvalidLimitError, type GatewayLimits } from './limits.ts';
export type { Session, SessionVerifier } from './session/session.ts';
export type { OrderHistory, OrderHistoryPage } from './streams/order-history.ts';
export type { HistoryReadLimits } from './streams/history-reader.ts';
