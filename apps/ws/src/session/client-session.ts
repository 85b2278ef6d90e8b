import type { Channel, SubscribeRequest } from '@repo/protocol';
import type { ChannelKind, Reply, Stream, StreamOwner, StreamSink } from '../streams/stream.ts';
import type { ParsedClientMessage } from '../transport/client-messages.ts';
import type { ConnectionHandlers } from '../transport/connection.ts';
import type { RequestHandler } from './requests.ts';
import type { SessionRegistry } from './session-registry.ts';
import type { PartitionHolder, Session } from './session.ts';

/** What every socket's session shares: handed in by the gateway. */
export interface ClientSessionDeps {
  /** The channels served, in the order the gateway lists them. */
  readonly channels: ReadonlyMap<Channel, ChannelKind>;
  readonly registry: SessionRegistry<ClientSession>;
  /** Whose private events this process receives: held from `auth` until the authentication ends. */
  readonly partitions: PartitionHolder;
  /** Answers the socket's requests. */
  readonly requests: RequestHandler;
  /** Streams one socket may have at once (`maxSubscriptions`). */
  readonly maxSubscriptions: number;
}

const END_MESSAGES = {
  session_revoked: 'your session was revoked (logged out); authenticate again',
  session_expired: 'your session expired; authenticate again',
} as const;

/** `setTimeout` cannot wait longer than this; a later expiry re-arms the timer. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * Who a socket is and what it is subscribed to: its authentication (set by a verified `auth`,
 * never taken from the client), the expiry and revocation that end it, and its streams, one per
 * channel, which it adds to and removes from the subscriber index. Writes go through the
 * socket's connection; the session never touches the transport's state.
 */
export class ClientSession implements StreamOwner, ConnectionHandlers {
  readonly #sink: StreamSink;
  readonly #deps: ClientSessionDeps;
  #session: Session | null = null;
  #expiryTimer: NodeJS.Timeout | undefined;
  /**
   * Created on the first subscription: idle memory per socket counts. An exact-size array, not
   * a Map: a socket has at most `maxSubscriptions` streams, and a Map's smallest table costs
   * about 200 bytes per socket.
   */
  #streams: readonly Stream[] | null = null;

  constructor(sink: StreamSink, deps: ClientSessionDeps) {
    this.#sink = sink;
    this.#deps = deps;
  }

  /** The authenticated user, null while anonymous. */
  get userId(): number | null {
    return this.#session?.userId ?? null;
  }

  /**
   * Authenticates the socket with an already verified `session`, taking over the caller's hold
   * of its user's partition. Another user's private streams end.
   */
  signIn(session: Session): void {
    const previous = this.#session;
    // Another user's subscriptions must not carry over to this one.
    if (previous && previous.userId !== session.userId) this.#closeStreams(true);
    if (previous) {
      this.#deps.registry.remove(previous.sessionId, this);
      this.#deps.partitions.release(previous.userId);
    }
    this.#session = session;
    this.#deps.registry.add(session.sessionId, this);
    this.#clearExpiry();
    if (session.expiresAt) this.#armExpiry(session.expiresAt);
  }

  /** Ends the authentication (revocation, expiry): private streams end, public ones stay, the client is told. */
  end(code: 'session_revoked' | 'session_expired'): void {
    this.#closeStreams(true);
    this.#signOut();
    this.#sink.send({ type: 'error', code, message: END_MESSAGES[code] });
  }

  /** Starts (or restarts) the stream of `request.channel`; resolves when it is live. */
  subscribe(request: SubscribeRequest, reply: Reply): void | Promise<void> {
    const { channel } = request;
    const kind = this.#deps.channels.get(channel);
    if (!kind) return reply({ type: 'error', code: 'unknown_channel', message: `${channel} is not served here` });
    if (kind.needsAuth && this.#session === null) {
      return reply({ type: 'error', code: 'auth_required', message: `authenticate before subscribing to ${channel}` });
    }
    let stream = this.#stream(channel);
    if (!stream) {
      const { maxSubscriptions } = this.#deps;
      if ((this.#streams?.length ?? 0) >= maxSubscriptions) {
        return reply({
          type: 'error',
          code: 'too_many_subscriptions',
          message: `at most ${maxSubscriptions} subscriptions per socket`,
        });
      }
      // Indexed before it opens: live events that arrive while it reads are held, not lost.
      stream = kind.subscribe(this.#sink, this, this.userId);
      this.#streams = this.#streams ? [...this.#streams, stream] : [stream];
    }
    return stream.open(request, reply);
  }

  unsubscribe(channel: Channel): void {
    const stream = this.#stream(channel);
    if (!stream) return;
    this.#remove(stream);
    stream.close();
  }

  peer(channel: Channel): Stream | undefined {
    return this.#stream(channel);
  }

  ended(stream: Stream): void {
    if (this.#stream(stream.channel) === stream) this.#remove(stream);
    stream.close();
  }

  #stream(channel: Channel): Stream | undefined {
    return this.#streams?.find((stream) => stream.channel === channel);
  }

  #remove(stream: Stream): void {
    const rest = this.#streams?.filter((s) => s !== stream) ?? [];
    this.#streams = rest.length > 0 ? rest : null;
  }

  onRequest(request: ParsedClientMessage): void | Promise<void> {
    return this.#deps.requests.handle(this.#sink, this, request);
  }

  /** The socket closed: every stream ends, the registry forgets the socket. */
  onClosed(): void {
    this.#closeStreams(false);
    this.#streams = null;
    this.#signOut();
  }

  #signOut(): void {
    if (this.#session) {
      this.#deps.registry.remove(this.#session.sessionId, this);
      this.#deps.partitions.release(this.#session.userId);
    }
    this.#session = null;
    this.#clearExpiry();
  }

  /**
   * Closes the private streams (or all of them), in reverse channel order: a stream that waits
   * for another one (the portfolio for its order events) ends before the one it waits for.
   */
  #closeStreams(privateOnly: boolean): void {
    if (!this.#streams) return;
    for (const kind of [...this.#deps.channels.values()].reverse()) {
      if (!privateOnly || kind.needsAuth) this.unsubscribe(kind.channel);
    }
  }

  #armExpiry(expiresAt: Date): void {
    const remaining = expiresAt.getTime() - Date.now();
    if (remaining <= 0) {
      this.end('session_expired');
      return;
    }
    this.#expiryTimer = setTimeout(
      () => {
        this.#expiryTimer = undefined;
        this.#armExpiry(expiresAt);
      },
      Math.min(remaining, MAX_TIMER_MS),
    );
    this.#expiryTimer.unref();
  }

  #clearExpiry(): void {
    if (this.#expiryTimer) clearTimeout(this.#expiryTimer);
    this.#expiryTimer = undefined;
  }
}
