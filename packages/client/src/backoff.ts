import { CLOSE_CODES } from '@repo/protocol';

/** WebSocket close codes after which the server asked us, in effect, to back off. */
const PENALISED_CLOSE_CODES: ReadonlySet<number> = new Set([
  CLOSE_CODES.policyViolation, // kept flooding after rate_limited
  CLOSE_CODES.slowConsumer, // we were not reading fast enough
]);

/**
 * The attempt number to use for the next delay after a connection ended.
 *
 * A connection that got fully open (authenticated and resubscribed) starts over at attempt 0,
 * except when the server closed it for misbehaviour (policy violation 1008, slow consumer
 * 4008): then the count keeps growing, so a client that trips a limit on every connection ends
 * up retrying every `maxDelayMs` instead of hammering the gateway. It still reconnects, because
 * the cause is often transient (a burst, a slow tab) and giving up would leave the app silently
 * dead.
 */
export function nextReconnectAttempt(previousAttempt: number, wasOpen: boolean, closeCode: number | undefined): number {
  if (closeCode !== undefined && PENALISED_CLOSE_CODES.has(closeCode)) return previousAttempt;
  return wasOpen ? 0 : previousAttempt;
}
