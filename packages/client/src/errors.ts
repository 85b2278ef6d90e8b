import type { Channel, ErrorCode } from '@repo/protocol';

/**
 * Every code a client error can carry: the gateway's own codes (`ERROR_CODES` in
 * @repo/protocol, docs/protocol.md) plus the two the client raises itself.
 */
export type ClientErrorCode = ErrorCode | 'connection_closed' | 'timeout';

/**
 * An error with a code: a `{"type":"error"}` reply from the gateway, or (through the two
 * subclasses below) a request the client could not complete. Callers switch on `code`,
 * never on `message`.
 */
export class ServerError extends Error {
  readonly code: ClientErrorCode;
  /** The channel a failed (re)subscription was for, when the error is about one. */
  readonly channel: Channel | undefined;

  constructor(code: ClientErrorCode, message: string, options: { channel?: Channel } = {}) {
    super(message);
    this.name = 'ServerError';
    this.code = code;
    this.channel = options.channel;
  }
}

/**
 * The request was in flight (or waiting to be sent) when the connection dropped or `close()`
 * was called. It may or may not have reached the server.
 */
export class ConnectionClosedError extends ServerError {
  constructor(message = 'connection closed before the reply arrived') {
    super('connection_closed', message);
    this.name = 'ConnectionClosedError';
  }
}

/** No reply within `requestTimeoutMs`. */
export class TimeoutError extends ServerError {
  constructor(message: string) {
    super('timeout', message);
    this.name = 'TimeoutError';
  }
}
