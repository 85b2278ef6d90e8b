export { addressKey, isLoopback } from './address.ts';
export { createAddressMatcher, createClientAddress, isAddressOrCidr, type AddressedRequest } from './client-address.ts';
export { createMetricsAccess, type MetricsAccess, type MetricsRequest } from './metrics-access.ts';
