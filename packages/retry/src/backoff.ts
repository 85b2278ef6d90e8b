/** Full-jitter capped exponential backoff (AWS, "Exponential Backoff and Jitter"). */
export interface BackoffOptions {
  /** Delay ceiling of the first retry, in ms. */
  baseDelayMs: number;
  /** No retry waits longer than this, in ms. */
  maxDelayMs: number;
}

/**
 * The delay before retry `attempt` (0 for the first): uniform in
 * `[0, min(maxDelayMs, baseDelayMs * 2^attempt))`. Full jitter rather than "exponential plus a
 * little noise" because the processes and clients that lost a peer lost it in the same instant;
 * spreading them over the whole window keeps them from coming back in lockstep.
 *
 * `random` is a seam for tests; it must return a number in [0, 1).
 */
export function backoffDelay(attempt: number, options: BackoffOptions, random: () => number = Math.random): number {
  const exponent = Math.min(Math.max(0, Math.floor(attempt)), 30); // 2^30 * any sane base is past any cap
  const ceiling = Math.min(options.maxDelayMs, options.baseDelayMs * 2 ** exponent);
  return Math.floor(random() * ceiling);
}
