export { addressKey, isLoopback } from './address.ts';
export { createMetricsAccess, type MetricsAccess, type MetricsRequest } from './metrics-access.ts';
