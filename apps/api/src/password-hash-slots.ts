import { SlotQueue } from '@repo/retry';
import { ApiError } from './errors.ts';

export interface PasswordHashSlotOptions {
  /**
   * Password hashes in flight at once (default 8: twice libuv's default thread pool of 4, so the
   * pool is never idle between two hashes and never holds a long queue).
   */
  maxInFlight?: number;
  /** Hashes waiting for a slot (default 32); past it a request is refused at once. */
  maxWaiting?: number;
  /** Longest wait for a slot (default 1000 ms); past it the request is refused. */
  maxWaitMs?: number;
  /** Told the number in flight whenever it changes (a metrics gauge). */
  onInFlight?: (inFlight: number) => void;
  /** Told of every refusal (a metrics counter). */
  onRefused?: () => void;
}

/**
 * Bounds the argon2 hashes of logins and registrations. Each one is ~20-45 ms of a libuv
 * thread; without a bound, a few hundred one-shot logins from as many addresses (each far
 * under its own rate limit) queue on the pool and an honest login waits for all of them.
 * Over the bound the answer is a quick 429 `rate_limited` with `Retry-After`, not a slow one.
 */
export class PasswordHashSlots {
  readonly #slots: SlotQueue;
  readonly #maxWaitMs: number;
  readonly #onInFlight: ((inFlight: number) => void) | undefined;
  readonly #onRefused: (() => void) | undefined;
  #inFlight = 0;
  #peakInFlight = 0;

  constructor(options: PasswordHashSlotOptions = {}) {
    this.#maxWaitMs = positiveInteger('maxWaitMs', options.maxWaitMs ?? 1000);
    this.#onInFlight = options.onInFlight;
    this.#onRefused = options.onRefused;
    this.#slots = new SlotQueue({
      concurrency: positiveInteger('maxInFlight', options.maxInFlight ?? 8),
      maxWaiting: nonNegativeInteger('maxWaiting', options.maxWaiting ?? 32),
      onChange: (held) => this.#setInFlight(held),
    });
  }

  /** Hashes in flight now. */
  get inFlight(): number {
    return this.#inFlight;
  }

  /** The most hashes that were ever in flight at once. */
  get peakInFlight(): number {
    return this.#peakInFlight;
  }

  /** Runs `hash` in a slot; throws 429 `rate_limited` when none frees up in time. */
  async run<T>(hash: () => Promise<T>): Promise<T> {
    const slot = this.#slots.acquire(Date.now() + this.#maxWaitMs);
    if (!slot || !(await slot.granted)) throw this.#refuse();
    try {
      return await hash();
    } finally {
      this.#slots.release();
    }
  }

  #setInFlight(inFlight: number): void {
    if (inFlight === this.#inFlight) return;
    this.#inFlight = inFlight;
    this.#peakInFlight = Math.max(this.#peakInFlight, inFlight);
    this.#onInFlight?.(inFlight);
  }

  #refuse(): ApiError {
    this.#onRefused?.();
    return new ApiError('rate_limited', 'too many password checks at once, retry in 1 s', { 'Retry-After': '1' });
  }
}

function positiveInteger(name: string, value: number): number {
  if (!Number.isInteger(value) || value < 1) {
    throw new RangeError(`password hash slots: ${name} must be a positive integer, got ${value}`);
  }
  return value;
}

function nonNegativeInteger(name: string, value: number): number {
  if (!Number.isInteger(value) || value < 0) {
    throw new RangeError(`password hash slots: ${name} must be a non-negative integer, got ${value}`);
  }
  return value;
}
