/**
 * Per-address limit on WebSocket upgrade attempts: at most `limit` attempts per address in
 * each fixed window of `windowMs`. Stops one host from churning connections (a reconnect
 * loop gone wrong, a script) fast enough to hurt everyone else's handshakes.
 *
 * Memory is bounded twice: the whole table is dropped when a window ends (a fixed window
 * needs no per-entry expiry), and within a window at most `maxAddresses` are tracked; an
 * address beyond that is let through uncounted, since the process-wide connection cap still
 * holds and refusing strangers wholesale would turn a wide attack into a total outage.
 *
 * Addresses are counted by their `addressKey` (IPv6 per /64: one subscriber usually holds a
 * whole /64, so counting single addresses would let one host rotate through billions of them);
 * the caller computes the key and decides who is exempt.
 */
export class AddressRateLimiter {
  readonly #limit: number;
  readonly #windowMs: number;
  readonly #maxAddresses: number;
  #windowStart = 0;
  #counts = new Map<string, number>();

  constructor(options: { limit: number; windowMs: number; maxAddresses?: number }) {
    this.#limit = options.limit;
    this.#windowMs = options.windowMs;
    this.#maxAddresses = options.maxAddresses ?? 100_000;
  }

  /** Counts one attempt from the address of `key`; false when it is over the limit for this window. */
  take(key: string, nowMs: number): boolean {
    if (nowMs - this.#windowStart >= this.#windowMs) {
      this.#windowStart = nowMs;
      this.#counts = new Map();
    }
    const count = this.#counts.get(key);
    if (count === undefined) {
      if (this.#counts.size < this.#maxAddresses) this.#counts.set(key, 1);
      return true;
    }
    if (count >= this.#limit) return false;
    this.#counts.set(key, count + 1);
    return true;
  }

  /** Milliseconds until the current window ends (for `Retry-After`). */
  retryAfterMs(nowMs: number): number {
    return Math.max(0, this.#windowStart + this.#windowMs - nowMs);
  }
}
