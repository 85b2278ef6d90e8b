export { createApi, type Api, type ApiOptions } from './create-api.ts';
export { OutboxRelay, type OutboxRelayOptions } from './outbox-relay.ts';
export { API_ERRORS, ApiError, type ApiErrorCode } from './errors.ts';
export { DEFAULT_LOGIN_RATE_LIMIT, type LoginRateLimitOptions } from './login-throttle.ts';
export type { RateLimitRule } from './rate-limiter.ts';
