export { createGateway, type Gateway, type GatewayOptions } from './gateway.ts';
export { defaultLimits, InvalidLimitError, type GatewayLimits } from './limits.ts';
export type { Session, SessionState, SessionVerifier } from './session/session.ts';
export type { OrderHistory, OrderHistoryPage } from './streams/order-history.ts';
export type { HistoryReadLimits } from './streams/history-reader.ts';
export { NodeCoordinator } from './cluster/node-coordinator.ts';
export { createWorkerLink, type PrimaryChannel } from './cluster/worker-link.ts';
export type { GatewayNode, NodeHealth } from './cluster/gateway-node.ts';
