import { ApiError } from './errors.ts';
import type { ApiMetrics } from './metrics.ts';
import { FixedWindowLimiter, type RateLimitDecision, type RateLimitRule } from './rate-limiter.ts';

export interface LoginRateLimitOptions {
  /** Login attempts per client address (default 60 per minute). Every attempt counts. */
  perAddress?: RateLimitRule;
  /** Failed logins per username (default 10 per 15 minutes). A success clears the count. */
  perUsername?: RateLimitRule;
  /**
   * Registrations per client address (default 300 per 10 minutes). Each one costs a scrypt
   * hash, so unlimited registrations would be a cheap way to burn the server's CPU.
   */
  registerPerAddress?: RateLimitRule;
  /** Keys tracked per limiter before the oldest are forgotten (default 100000). */
  maxKeys?: number;
  now?: () => number;
}

export const DEFAULT_LOGIN_RATE_LIMIT = {
  perAddress: { max: 60, windowMs: 60_000 },
  perUsername: { max: 10, windowMs: 15 * 60_000 },
  registerPerAddress: { max: 300, windowMs: 10 * 60_000 },
} as const;

/**
 * Login throttling per address and per username, answered with 429 and `Retry-After`. The
 * per-username limit counts failures only, so a guessing attacker spread over many addresses
 * is still stopped; its price is that such an attacker can lock a username out for one window
 * (documented in docs/api.md).
 */
export class LoginThrottle {
  readonly #perAddress: FixedWindowLimiter;
  readonly #perUsername: FixedWindowLimiter;
  readonly #registerPerAddress: FixedWindowLimiter;
  readonly #metrics: Pick<ApiMetrics, 'loginThrottled'> | undefined;

  constructor(options: LoginRateLimitOptions = {}, metrics?: Pick<ApiMetrics, 'loginThrottled'>) {
    const common = { maxKeys: options.maxKeys, now: options.now };
    this.#perAddress = new FixedWindowLimiter(options.perAddress ?? DEFAULT_LOGIN_RATE_LIMIT.perAddress, common);
    this.#perUsername = new FixedWindowLimiter(options.perUsername ?? DEFAULT_LOGIN_RATE_LIMIT.perUsername, common);
    this.#registerPerAddress = new FixedWindowLimiter(
      options.registerPerAddress ?? DEFAULT_LOGIN_RATE_LIMIT.registerPerAddress,
      common,
    );
    this.#metrics = metrics;
  }

  /** Throws 429 when `address` or `username` is over its limit; otherwise counts the attempt. */
  beginLogin(address: string, username: string): void {
    this.#refuse('address', this.#perAddress.check(address));
    this.#refuse('username', this.#perUsername.check(username));
    this.#perAddress.hit(address);
  }

  loginFailed(username: string): void {
    this.#perUsername.hit(username);
  }

  loginSucceeded(username: string): void {
    this.#perUsername.reset(username);
  }

  /** Throws 429 when `address` registered too often; otherwise counts the registration. */
  beginRegister(address: string): void {
    this.#refuse('register', this.#registerPerAddress.check(address));
    this.#registerPerAddress.hit(address);
  }

  #refuse(scope: string, decision: RateLimitDecision): void {
    if (decision.allowed) return;
    this.#metrics?.loginThrottled.inc({ scope });
    const seconds = Math.max(1, Math.ceil(decision.retryAfterMs / 1000));
    throw new ApiError('rate_limited', `too many attempts, retry in ${seconds} s`, { 'Retry-After': String(seconds) });
  }
}
