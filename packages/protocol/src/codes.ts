/**
 * Every error code the gateway sends in `{"type":"error","code":…}`. The same codes are in
 * docs/protocol.md; clients switch on them.
 */
export const ERROR_CODES = [
  'invalid_json',
  'invalid_message',
  'unknown_channel',
  'auth_required',
  'auth_failed',
  'rate_limited',
  'session_revoked',
  'session_expired',
  'too_many_subscriptions',
  'broker_unavailable',
  'internal_error',
] as const;
export type ErrorCode = (typeof ERROR_CODES)[number];

/** WebSocket close codes the gateway uses, with their reasons. */
export const CLOSE_CODES = {
  /** Server shutting down (SIGTERM): reconnect, possibly to another node. */
  goingAway: 1001,
  /** Policy violation: the socket kept flooding after `rate_limited`, or auth deadline passed. */
  policyViolation: 1008,
  /** A client frame over the size limit (16 KiB by default). */
  messageTooBig: 1009,
  /** The socket's send buffer passed the hard limit: it was not reading. */
  slowConsumer: 4008,
} as const;

export const PUBLIC_CHANNELS = ['prices'] as const;
export const PRIVATE_CHANNELS = ['orders', 'portfolio'] as const;
export const CHANNELS = [...PUBLIC_CHANNELS, ...PRIVATE_CHANNELS] as const;
export type Channel = (typeof CHANNELS)[number];

export function isChannel(value: unknown): value is Channel {
  return typeof value === 'string' && (CHANNELS as readonly string[]).includes(value);
}
