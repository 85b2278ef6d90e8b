import { ErrorReply } from '@repo/redis';
import { BrokerCommandError, BrokerUnavailableError } from './broker.ts';

/**
 * Error replies that mean "this server cannot serve now" rather than "this command is wrong":
 * a Redis loading its data, a replica or a cluster without a reachable master. They pass like a
 * dropped connection does, so they count as the broker being unavailable.
 */
const UNAVAILABLE_REPLIES = new Set(['LOADING', 'READONLY', 'MASTERDOWN', 'CLUSTERDOWN', 'TRYAGAIN', 'BUSY']);

/**
 * The broker error for a failed Redis command: `BrokerCommandError` when Redis answered with an
 * error about the command itself (its reply kept in the message), `BrokerUnavailableError` for
 * everything else (no connection, a connection lost or timed out with the command in flight).
 */
export function redisCommandFailure(what: string, err: unknown): BrokerCommandError | BrokerUnavailableError {
  if (err instanceof ErrorReply) {
    const reply = /^\S+/.exec(err.message)?.[0] ?? 'ERR';
    if (!UNAVAILABLE_REPLIES.has(reply))
      return new BrokerCommandError(`${what}: ${err.message}`, reply, { cause: err });
  }
  const reason = err instanceof Error ? `: ${err.message}` : '';
  return new BrokerUnavailableError(`${what}${reason}`, { cause: err });
}
