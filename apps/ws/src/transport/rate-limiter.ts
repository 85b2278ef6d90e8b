/** What to do with one client message. */
export type RateDecision = 'accept' | 'reject' | 'close';

/**
 * Per-socket message rate limit: a fixed window of `windowMs` admitting `limit` messages.
 * Messages over the limit are rejected; a socket that piles up more than `closeAfter`
 * rejections without one calm window in between is flooding and gets closed. A fixed window
 * costs two numbers per socket and no timer.
 */
export class MessageRateLimiter {
  readonly #limit: number;
  readonly #windowMs: number;
  readonly #closeAfter: number;
  #windowStart = 0;
  #count = 0;
  #rejected = 0;

  constructor(limit: number, windowMs: number, closeAfter: number) {
    this.#limit = limit;
    this.#windowMs = windowMs;
    this.#closeAfter = closeAfter;
  }

  take(nowMs: number): RateDecision {
    if (nowMs - this.#windowStart >= this.#windowMs) {
      // A window that stayed within the limit (or an idle one) forgives earlier rejections.
      if (this.#count <= this.#limit || nowMs - this.#windowStart >= 2 * this.#windowMs) this.#rejected = 0;
      this.#windowStart = nowMs;
      this.#count = 0;
    }
    this.#count += 1;
    if (this.#count <= this.#limit) return 'accept';
    this.#rejected += 1;
    return this.#rejected > this.#closeAfter ? 'close' : 'reject';
  }
}
