import type { Logger } from '@repo/log';
import type { ReplyMessage, RequestId } from '@repo/protocol';
import type { StreamSink } from '../streams/stream.ts';
import type { ParsedClientMessage } from '../transport/client-messages.ts';
import type { Authenticator } from './authenticator.ts';
import type { ClientSession } from './client-session.ts';
import type { PartitionHolder, Session } from './session.ts';

/**
 * Answers the protocol's requests (docs/protocol.md) for one socket: `ping`, `auth`,
 * `subscribe`, `unsubscribe`. The connection hands them over one at a time, in order; the
 * session does the work. A reply echoes the request's `id`.
 */
export class RequestHandler {
  readonly #authenticator: Authenticator;
  readonly #partitions: PartitionHolder;
  readonly #logger: Logger;

  constructor(deps: { authenticator: Authenticator; partitions: PartitionHolder; logger: Logger }) {
    this.#authenticator = deps.authenticator;
    this.#partitions = deps.partitions;
    this.#logger = deps.logger;
  }

  /** Never throws: an unexpected failure is logged and answered with a bare `internal_error`. */
  handle(sink: StreamSink, session: ClientSession, parsed: ParsedClientMessage): void | Promise<void> {
    try {
      const pending = this.#dispatch(sink, session, parsed);
      return pending?.catch((err: unknown) => this.#failed(sink, err));
    } catch (err) {
      this.#failed(sink, err);
    }
  }

  #dispatch(sink: StreamSink, session: ClientSession, parsed: ParsedClientMessage): void | Promise<void> {
    if (!parsed.ok) return reply(sink, parsed, { type: 'error', code: parsed.code, message: parsed.message });
    const request = parsed.message;
    switch (request.type) {
      case 'ping':
        return reply(sink, request, { type: 'pong' });
      case 'auth':
        return this.#authenticate(sink, session, request);
      case 'subscribe':
        return session.subscribe(request, (message) => reply(sink, request, message));
      case 'unsubscribe':
        session.unsubscribe(request.channel);
        return reply(sink, request, { type: 'unsubscribed', channel: request.channel });
    }
  }

  async #authenticate(
    sink: StreamSink,
    session: ClientSession,
    request: { token: string; id?: RequestId },
  ): Promise<void> {
    // Before the token is checked: a partition subscribed after this may have missed the
    // user's revocation while the check ran (see #holdPartition).
    const mark = this.#partitions.mark();
    const verification = await this.#authenticator.verify(request.token, sink);
    if (!sink.isOpen) return;
    if (!verification.ok) {
      // A failed attempt changes nothing: an earlier authentication stays as it was.
      return reply(sink, request, { type: 'error', code: verification.code, message: verification.message });
    }
    const { userId } = verification.session;
    if (!(await this.#holdPartition(sink, request, verification.session, mark))) return;
    if (!sink.isOpen) return this.#partitions.release(userId);
    session.signIn(verification.session);
    reply(sink, request, { type: 'auth_ok', userId });
  }

  /**
   * Makes the user's private events reach this process before `auth_ok`, so that a subscription
   * made after it misses nothing (its snapshot or history read starts after the broker
   * subscription). When the user's partition was not subscribed yet, or became subscribed
   * (by another user's socket) while the token was being checked, the user's revocations may
   * not have reached this process either: the token is checked again. False (the client
   * told why) when the socket may not sign in.
   */
  async #holdPartition(
    sink: StreamSink,
    request: { token: string; id?: RequestId },
    verified: Session,
    mark: number,
  ): Promise<boolean> {
    let subscribedNow: boolean;
    try {
      subscribedNow = await this.#partitions.hold(verified.userId, mark);
    } catch {
      reply(sink, request, {
        type: 'error',
        code: 'internal_error',
        message: 'authentication is unavailable right now; retry',
      });
      return false;
    }
    if (!subscribedNow) return true;
    const again = await this.#authenticator.verify(request.token, sink);
    if (again.ok && again.session.sessionId === verified.sessionId) return true;
    this.#partitions.release(verified.userId);
    const refused = again.ok ? { code: 'auth_failed' as const, message: 'invalid or expired token' } : again;
    reply(sink, request, { type: 'error', code: refused.code, message: refused.message });
    return false;
  }

  #failed(sink: StreamSink, err: unknown): void {
    this.#logger.error({ err, connection: sink.id }, 'request handler failed');
    sink.send({ type: 'error', code: 'internal_error', message: 'internal error' });
  }
}

function reply(sink: StreamSink, request: { id?: RequestId }, message: ReplyMessage): void {
  sink.send(request.id === undefined ? message : { ...message, id: request.id });
}
