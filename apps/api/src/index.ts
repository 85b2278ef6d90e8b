export { createApi, type Api, type ApiOptions } from './create-api.ts';
export { OutboxRelay, type OutboxRelayOptions } from './outbox-relay.ts';
export { API_ERRORS, ApiError, type ApiErrorCode } from './errors.ts';
export { DEFAULT_RATE_LIMITS, type RateLimitOptions, type RateLimitRule } from './rate-limits.ts';
