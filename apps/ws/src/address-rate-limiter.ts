import { isIPv6 } from 'node:net';

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
 * IPv6 addresses are counted per /64: one subscriber usually holds a whole /64, so counting
 * single addresses would let one host rotate through billions of them.
 */
export class AddressRateLimiter {
  readonly #limit: number;
  readonly #windowMs: number;
  readonly #maxAddresses: number;
  readonly #exempt: ReadonlySet<string>;
  #windowStart = 0;
  #counts = new Map<string, number>();

  constructor(options: { limit: number; windowMs: number; maxAddresses?: number; exempt?: Iterable<string> }) {
    this.#limit = options.limit;
    this.#windowMs = options.windowMs;
    this.#maxAddresses = options.maxAddresses ?? 100_000;
    this.#exempt = new Set([...(options.exempt ?? [])].map(addressKey));
  }

  /** Counts one attempt from `address`; false when it is over the limit for this window. */
  take(address: string | undefined, nowMs: number): boolean {
    if (address === undefined) return true;
    const key = addressKey(address);
    if (this.#exempt.has(key)) return true;
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

/** The key an address is counted under: IPv4 as is (also when IPv4-mapped), IPv6 by its /64. */
export function addressKey(address: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return mapped[1]!;
  if (!isIPv6(address)) return address;
  if (address === '::1') return address;
  return `${expandIPv6(address).slice(0, 4).join(':')}::/64`;
}

function expandIPv6(address: string): string[] {
  const [head = '', tail = ''] = address.toLowerCase().split('%')[0]!.split('::');
  const left = head === '' ? [] : head.split(':');
  const right = address.includes('::') ? (tail === '' ? [] : tail.split(':')) : [];
  const zeros = address.includes('::') ? Array<string>(Math.max(0, 8 - left.length - right.length)).fill('0') : [];
  return [...left, ...zeros, ...right].map((group) => group.replace(/^0+(?=.)/, ''));
}
