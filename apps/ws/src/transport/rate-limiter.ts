/** What to do with one client message. */
export type RateDecision = 'accept' | 'reject' | 'close';

/**
 * Per-socket message rate limit: a fixed window of `windowMs` admitting `limit` messages.
 * Messages over the limit are rejected; a socket that piles up more than `closeAfter`
 * rejections without one calm window (nothing rejected in it) in between is flooding and gets
 * closed. Rejections for another reason (a full request queue) count the same way, through
 * `reject`. A fixed window costs a few numbers per socket and no timer.
 */
export class MessageRateLimiter {
  readonly #limit: number;
  readonly #windowMs: number;
  readonly #closeAfter: number;
  #windowStart = 0;
  #count = 0;
  #rejected = 0;
  #rejectedInWindow = false;

  constructor(limit: number, windowMs: number, closeAfter: number) {
    this.#limit = limit;
    this.#windowMs = windowMs;
    this.#closeAfter = closeAfter;
  }

  take(nowMs: number): RateDecision {
    if (nowMs - this.#windowStart >= this.#windowMs) {
      // A calm window (or an idle one) forgives earlier rejections.
      if (!this.#rejectedInWindow || nowMs - this.#windowStart >= 2 * this.#windowMs) this.#rejected = 0;
      this.#windowStart = nowMs;
      this.#count = 0;
      this.#rejectedInWindow = false;
    }
    this.#count += 1;
    if (this.#count <= this.#limit) return 'accept';
    return this.reject();
  }

  /** Rejects a message `take` accepted (the socket has too many requests outstanding). */
  reject(): 'reject' | 'close' {
    this.#rejected += 1;
    this.#rejectedInWindow = true;
    return this.#rejected > this.#closeAfter ? 'close' : 'reject';
  }
}
