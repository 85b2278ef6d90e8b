/**
 * Every error code and close code of the protocol, in one file: the gateway sends them, the SDK
 * switches on them, and docs/protocol.md lists exactly these (a test compares the two).
 */

/** Every error code the gateway sends in `{"type":"error","code":…}`. */
export const ERROR_CODES = [
  'invalid_json',
  'invalid_message',
  'unknown_channel',
  /** `subscribe prices` naming a symbol the gateway does not serve (not in its configured symbols). */
  'unknown_symbol',
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

/** The codes the SDK raises itself, never sent by the gateway. */
export const CLIENT_ERROR_CODES = [
  /** The request was in flight (or queued) when its connection dropped or the client was closed. */
  'connection_closed',
  /** No reply within the SDK's request deadline. */
  'timeout',
] as const;
/** Every code an SDK error can carry: the gateway's and the SDK's own. */
export type ClientErrorCode = ErrorCode | (typeof CLIENT_ERROR_CODES)[number];

/** WebSocket close codes, whoever closes with them. */
export const CLOSE_CODES = {
  /** The SDK's `close()`: closed for good by the application. */
  normal: 1000,
  /** Server shutting down (SIGTERM): reconnect, possibly to another node. */
  goingAway: 1001,
  /** A WebSocket protocol violation (e.g. an unmasked client frame); `ws` closes with it. */
  protocolError: 1002,
  /** No close frame at all: the TCP connection ended (e.g. a socket that missed its pong). Never sent. */
  abnormalClosure: 1006,
  /** A text frame that is not valid UTF-8; `ws` closes with it. */
  invalidPayload: 1007,
  /** Policy violation: the socket kept flooding after `rate_limited`. */
  policyViolation: 1008,
  /** A client frame over the size limit (16 KiB by default). */
  messageTooBig: 1009,
  /** A gap in the socket's `orders` stream could not be filled from history: resubscribe with `since`. */
  historyUnavailable: 1011,
  /** The SDK gave up on a socket that stopped answering (its watchdog, or a session restore timed out). */
  notAnswering: 4000,
  /** The socket's send buffer passed the hard limit: it was not reading. */
  slowConsumer: 4008,
} as const;

const PUBLIC_CHANNELS = ['prices'] as const;
/** The channels that carry one user's events and need an authenticated socket. */
export const PRIVATE_CHANNELS = ['orders', 'portfolio'] as const;
export const CHANNELS = [...PUBLIC_CHANNELS, ...PRIVATE_CHANNELS] as const;
export type Channel = (typeof CHANNELS)[number];

export function isChannel(value: unknown): value is Channel {
  return typeof value === 'string' && (CHANNELS as readonly string[]).includes(value);
}
