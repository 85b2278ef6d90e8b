import { addressKey } from '@repo/http-access';
import { redisKeys, type RedisClient, type RedisClusterClient } from '@repo/redis';
import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes, type RateLimiterAbstract } from 'rate-limiter-flexible';
import { ApiError } from './errors.ts';
import type { ApiMetrics } from './metrics.ts';

/** A limit of `max` attempts per fixed window of `windowMs` per key. */
export interface RateLimitRule {
  max: number;
  /** Whole seconds (a multiple of 1000): the Redis store counts in seconds. */
  windowMs: number;
}

export interface RateLimitOptions {
  /** Login attempts per client address (default 60 per minute). Every attempt counts. */
  perAddress?: RateLimitRule;
  /**
   * Logins per username and client address that did not succeed (default 10 per 15 minutes).
   * Counted when the attempt starts, so parallel guesses cannot all pass before the first
   * failure is counted; a success clears the count. Keyed on the address too, so that one
   * address's guesses never lock the username's owner out from another address.
   */
  perUsernameAndAddress?: RateLimitRule;
  /**
   * Logins per username that did not succeed, from all addresses together (default 100 per
   * 15 minutes): bounds guessing spread over many addresses. Counted when the attempt starts;
   * a success gives its attempt back.
   */
  perUsername?: RateLimitRule;
  /**
   * Registrations per client address (default 300 per 10 minutes). Each one costs a password
   * hash, so unlimited registrations would be a cheap way to burn the server's CPU.
   */
  registerPerAddress?: RateLimitRule;
  /** Orders per user (default 20 per second; `ORDERS_PER_USER_PER_SECOND`). */
  ordersPerUser?: RateLimitRule;
  /**
   * `GET /candles` per client address (default 120 per minute). Anonymous, and each page is up
   * to 1000 rows read on the pool orders use, so an unlimited loop slows every order down. The
   * web page asks once per chart opened, market or interval switched, and gap in the feed.
   */
  candlesPerAddress?: RateLimitRule;
}

export const DEFAULT_RATE_LIMITS = {
  perAddress: { max: 60, windowMs: 60_000 },
  perUsernameAndAddress: { max: 10, windowMs: 15 * 60_000 },
  perUsername: { max: 100, windowMs: 15 * 60_000 },
  registerPerAddress: { max: 300, windowMs: 10 * 60_000 },
  ordersPerUser: { max: 20, windowMs: 1000 },
  candlesPerAddress: { max: 120, windowMs: 60_000 },
} as const satisfies Required<RateLimitOptions>;

type Scope = keyof RateLimitOptions;
type Metrics = Pick<ApiMetrics, 'loginThrottled' | 'ordersThrottled' | 'candlesThrottled'>;

/**
 * The API's rate limits, on rate-limiter-flexible. With a Redis client the counts live in
 * Redis, so a limit holds across every API process; without one (the all-in-one mode) they
 * live in this process. When Redis fails, each limit falls back to an in-memory limiter of
 * the same rule in this process (the library's insurance limiter) instead of failing the
 * request or letting it through unlimited.
 *
 * Every limit counts an attempt when it starts; refused attempts are counted too but never
 * move the window's end, so hammering a closed window does not push its reopening out.
 * Per-address keys group IPv6 by /64 (`addressKey`).
 */
export class RateLimits {
  readonly #limiters: Record<Scope, RateLimiterAbstract>;
  readonly #metrics: Metrics | undefined;

  constructor(options: RateLimitOptions & { redis?: RedisClient | RedisClusterClient } = {}, metrics?: Metrics) {
    this.#metrics = metrics;
    const make = (scope: Scope): RateLimiterAbstract => {
      const rule = checkRule(scope, options[scope] ?? DEFAULT_RATE_LIMITS[scope]);
      const base = { points: rule.max, duration: rule.windowMs / 1000, keyPrefix: redisKeys.rateLimit(scope) };
      const memory = new RateLimiterMemory(base);
      if (!options.redis) return memory;
      return new RateLimiterRedis({
        ...base,
        storeClient: options.redis,
        useRedisPackage: true,
        // The client queues nothing while disconnected (see @repo/redis), and this fails over
        // to the in-memory limiter at once instead of trying a connection that is not ready.
        rejectIfRedisNotReady: true,
        insuranceLimiter: memory,
      });
    };
    this.#limiters = {
      perAddress: make('perAddress'),
      perUsernameAndAddress: make('perUsernameAndAddress'),
      perUsername: make('perUsername'),
      registerPerAddress: make('registerPerAddress'),
      ordersPerUser: make('ordersPerUser'),
      candlesPerAddress: make('candlesPerAddress'),
    };
  }

  /** Counts a login attempt from `address` for `username`; throws 429 when any login limit is over. */
  async beginLogin(address: string, username: string): Promise<void> {
    await this.#take('perAddress', addressKey(address), 'address');
    const pair = usernameAtAddress(username, address);
    await this.#take('perUsernameAndAddress', pair, 'username_address');
    try {
      await this.#take('perUsername', username, 'username');
    } catch (err) {
      // The owner retrying while guessers elsewhere hold the username closed must not use up
      // their own address's allowance, or they stay locked out after it reopens.
      await this.#limiters.perUsernameAndAddress.reward(pair, 1).catch(() => undefined);
      throw err;
    }
  }

  /**
   * A successful login clears the count of its username at its address and gives its attempt
   * back to the username's count across addresses. That one is not cleared: the owner logging
   * in must not hand a guesser spread over many addresses a fresh allowance.
   */
  async loginSucceeded(address: string, username: string): Promise<void> {
    await Promise.all([
      this.#limiters.perUsernameAndAddress.delete(usernameAtAddress(username, address)).catch(() => false),
      this.#limiters.perUsername.reward(username, 1).catch(() => undefined),
    ]);
  }

  /**
   * A login counted by `beginLogin` whose password was never checked (no hashing slot came
   * free): its attempt goes back to both username counts. Refused on the service's load, not
   * on a guess, it must not use up the owner's allowance.
   */
  async loginNotChecked(address: string, username: string): Promise<void> {
    await Promise.all([
      this.#limiters.perUsernameAndAddress.reward(usernameAtAddress(username, address), 1).catch(() => undefined),
      this.#limiters.perUsername.reward(username, 1).catch(() => undefined),
    ]);
  }

  /** Counts a registration from `address`; throws 429 past the limit. */
  async beginRegister(address: string): Promise<void> {
    await this.#take('registerPerAddress', addressKey(address), 'register');
  }

  /** Counts an order of `userId`; throws 429 past the limit. */
  async beginOrder(userId: number): Promise<void> {
    await this.#take('ordersPerUser', String(userId), 'orders');
  }

  /** Counts a `GET /candles` from `address`; throws 429 past the limit. */
  async beginCandles(address: string): Promise<void> {
    await this.#take('candlesPerAddress', addressKey(address), 'candles');
  }

  async #take(scope: Scope, key: string, label: string): Promise<void> {
    try {
      await this.#limiters[scope].consume(key);
    } catch (err) {
      // Refused: the library rejects with the counter's state. Anything else is a store
      // failure that even the in-memory fallback could not absorb; it is not a client error.
      if (!(err instanceof RateLimiterRes)) throw err;
      if (scope === 'ordersPerUser') this.#metrics?.ordersThrottled.inc();
      else if (scope === 'candlesPerAddress') this.#metrics?.candlesThrottled.inc();
      else this.#metrics?.loginThrottled.inc({ scope: label });
      const seconds = Math.max(1, Math.ceil(err.msBeforeNext / 1000));
      throw new ApiError('rate_limited', `too many attempts, retry in ${seconds} s`, {
        'Retry-After': String(seconds),
      });
    }
  }
}

/** The key of a username at a client address; no address key contains a space. */
function usernameAtAddress(username: string, address: string): string {
  return `${addressKey(address)} ${username}`;
}

function checkRule(scope: Scope, rule: RateLimitRule): RateLimitRule {
  if (!Number.isInteger(rule.max) || rule.max < 1) {
    throw new RangeError(`rate limit ${scope}.max must be a positive integer, got ${rule.max}`);
  }
  if (!Number.isInteger(rule.windowMs) || rule.windowMs < 1000 || rule.windowMs % 1000 !== 0) {
    throw new RangeError(
      `rate limit ${scope}.windowMs must be whole seconds (a multiple of 1000), got ${rule.windowMs}`,
    );
  }
  return rule;
}
