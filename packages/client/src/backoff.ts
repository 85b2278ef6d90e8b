/** Reconnect delays: full jitter over a capped exponential (AWS "Exponential Backoff and Jitter"). */
export interface BackoffOptions {
  /** Delay ceiling of the first retry. */
  baseDelayMs: number;
  /** No retry waits longer than this. */
  maxDelayMs: number;
}

/**
 * The delay before reconnect attempt `attempt` (0 for the first retry): uniform in
 * `[0, min(maxDelayMs, baseDelayMs * 2^attempt))`. Full jitter rather than "exponential plus
 * a little noise" because when a gateway node dies thousands of clients lose their socket in
 * the same instant; spreading them over the whole window is what keeps the reconnect storm
 * from hitting the next node, Redis and the history reads all at once.
 *
 * `random` is a seam for tests; it must return a number in [0, 1).
 */
export function backoffDelay(attempt: number, options: BackoffOptions, random: () => number = Math.random): number {
  const exponent = Math.min(Math.max(0, Math.floor(attempt)), 30); // 2^30 * any sane base is past any cap
  const ceiling = Math.min(options.maxDelayMs, options.baseDelayMs * 2 ** exponent);
  return Math.floor(random() * ceiling);
}

/** WebSocket close codes after which the server asked us, in effect, to back off. */
const PENALISED_CLOSE_CODES = new Set([
  1008, // policy violation: kept flooding after rate_limited, or missed the auth deadline
  4008, // slow consumer: we were not reading fast enough
]);

/**
 * The attempt number to use for the next delay after a connection ended.
 *
 * A connection that got fully open (authenticated and resubscribed) starts over at attempt 0,
 * except when the server closed it for misbehaviour (1008, 4008): then the count keeps
 * growing, so a client that trips a limit on every connection ends up retrying every
 * `maxDelayMs` instead of hammering the gateway. It still reconnects, because the cause is
 * often transient (a burst, a slow tab) and giving up would leave the app silently dead.
 */
export function nextReconnectAttempt(previousAttempt: number, wasOpen: boolean, closeCode: number | undefined): number {
  if (closeCode !== undefined && PENALISED_CLOSE_CODES.has(closeCode)) return previousAttempt;
  return wasOpen ? 0 : previousAttempt;
}
