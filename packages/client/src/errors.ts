import type { Channel, ClientErrorCode } from '@repo/protocol';
import type { TimeoutError } from '@repo/retry';

/**
 * An error with a code: a `{"type":"error"}` reply from the gateway, or (through the subclass
 * below) a request whose connection went away. Callers switch on `code`, never on `message`.
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

/**
 * What a request rejects with. Every one carries a `code` (`ClientErrorCode`): the gateway's
 * code (`ServerError`), `connection_closed` (`ConnectionClosedError`) or `timeout` when no reply
 * came within `requestTimeoutMs` (`TimeoutError`, the same class `@repo/retry`'s `withTimeout`
 * throws everywhere else).
 */
export type ClientError = ServerError | TimeoutError;
