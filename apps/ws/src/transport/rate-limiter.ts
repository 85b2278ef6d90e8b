/** What to do with one client message. */
export type RateDecision = 'accept' | 'reject' | 'close';

/**
 * One socket's place in its rate window: a few numbers kept on the socket's own object (its
 * connection) rather than in an object of their own, since idle memory per socket counts.
 */
export interface RateWindow {
  rateWindowStart: number;
  rateCount: number;
  rateRejected: number;
  rateRejectedInWindow: boolean;
}

/**
 * Per-socket message rate limit: a fixed window of `windowMs` admitting `limit` messages.
 * Messages over the limit are rejected; a socket that piles up more than `closeAfter`
 * rejections without one calm window (nothing rejected in it) in between is flooding and gets
 * closed. Rejections for another reason (a full request queue) count the same way, through
 * `reject`. One limiter serves every socket; each socket keeps its own `RateWindow`. A fixed
 * window costs a few numbers per socket and no timer.
 */
export class MessageRateLimiter {
  readonly #limit: number;
  readonly #windowMs: number;
  readonly #closeAfter: number;

  constructor(limit: number, windowMs: number, closeAfter: number) {
    this.#limit = limit;
    this.#windowMs = windowMs;
    this.#closeAfter = closeAfter;
  }

  take(window: RateWindow, nowMs: number): RateDecision {
    if (nowMs - window.rateWindowStart >= this.#windowMs) {
      // A calm window (or an idle one) forgives earlier rejections.
      if (!window.rateRejectedInWindow || nowMs - window.rateWindowStart >= 2 * this.#windowMs) {
        window.rateRejected = 0;
      }
      window.rateWindowStart = nowMs;
      window.rateCount = 0;
      window.rateRejectedInWindow = false;
    }
    window.rateCount += 1;
    if (window.rateCount <= this.#limit) return 'accept';
    return this.reject(window);
  }

  /** Rejects a message `take` accepted (the socket has too many requests outstanding). */
  reject(window: RateWindow): 'reject' | 'close' {
    window.rateRejected += 1;
    window.rateRejectedInWindow = true;
    return window.rateRejected > this.#closeAfter ? 'close' : 'reject';
  }
}
