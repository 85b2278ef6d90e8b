/** A limit of `max` hits per `windowMs` per key. */
export interface RateLimitRule {
  max: number;
  windowMs: number;
}

export type RateLimitDecision = { allowed: true } | { allowed: false; retryAfterMs: number };

interface Window {
  count: number;
  resetAt: number;
}

/**
 * Fixed-window counters per key (an address, a username), in memory. Memory is bounded: at
 * most `maxKeys` keys are tracked; when full, expired windows are dropped first, then the
 * oldest. A process restart forgets the counts, which only makes the limit briefly lenient.
 *
 * `check` never counts; `hit` does. Blocked attempts are not counted, so a client hammering a
 * closed window cannot push its own reopening further out.
 */
export class FixedWindowLimiter {
  readonly #rule: RateLimitRule;
  readonly #maxKeys: number;
  readonly #now: () => number;
  readonly #windows = new Map<string, Window>();

  constructor(rule: RateLimitRule, options: { maxKeys?: number; now?: () => number } = {}) {
    if (!Number.isInteger(rule.max) || rule.max < 1)
      throw new RangeError(`rate limit max must be a positive integer, got ${rule.max}`);
    if (!Number.isFinite(rule.windowMs) || rule.windowMs < 1) {
      throw new RangeError(`rate limit windowMs must be positive, got ${rule.windowMs}`);
    }
    this.#rule = rule;
    this.#maxKeys = options.maxKeys ?? 100_000;
    this.#now = options.now ?? Date.now;
  }

  check(key: string): RateLimitDecision {
    const window = this.#live(key);
    if (window && window.count >= this.#rule.max) return { allowed: false, retryAfterMs: window.resetAt - this.#now() };
    return { allowed: true };
  }

  hit(key: string): void {
    const window = this.#live(key);
    if (window) {
      window.count++;
      return;
    }
    this.#makeRoom();
    this.#windows.set(key, { count: 1, resetAt: this.#now() + this.#rule.windowMs });
  }

  reset(key: string): void {
    this.#windows.delete(key);
  }

  get size(): number {
    return this.#windows.size;
  }

  #live(key: string): Window | undefined {
    const window = this.#windows.get(key);
    if (window && window.resetAt <= this.#now()) {
      this.#windows.delete(key);
      return undefined;
    }
    return window;
  }

  #makeRoom(): void {
    if (this.#windows.size < this.#maxKeys) return;
    const now = this.#now();
    for (const [key, window] of this.#windows) if (window.resetAt <= now) this.#windows.delete(key);
    // Still full: drop the oldest windows (Map keeps insertion order).
    for (const key of this.#windows.keys()) {
      if (this.#windows.size < this.#maxKeys) break;
      this.#windows.delete(key);
    }
  }
}
