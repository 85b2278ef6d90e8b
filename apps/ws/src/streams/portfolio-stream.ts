import type { PortfolioUpdateEvent } from '@repo/events';
import type { SubscribeRequest } from '@repo/protocol';
import { encodeTextFrame } from '../transport/text-frame.ts';
import { OrderStream, type OrderFollower } from './order-stream.ts';
import type { PortfolioChannel } from './portfolio-channel.ts';
import type { Reply, Stream, StreamOwner, StreamSink } from './stream.ts';

/** A portfolio event, decoded and framed once for all of its user's sockets. */
export interface PortfolioUpdate {
  readonly event: PortfolioUpdateEvent;
  readonly frame: Buffer;
}

/** `event` with its `portfolio` frame, as a socket is sent it. */
export function portfolioUpdate(event: PortfolioUpdateEvent): PortfolioUpdate {
  return { event, frame: encodeTextFrame(JSON.stringify({ type: 'portfolio', ...event })) };
}

/** One socket's `portfolio` subscription. */
export class PortfolioStream implements Stream<PortfolioUpdate>, OrderFollower {
  readonly channel = 'portfolio';
  readonly userId: number;
  readonly #sink: StreamSink;
  readonly #owner: StreamOwner;
  readonly #kind: PortfolioChannel;
  /** While the snapshot is read: the latest live update that arrived meanwhile. */
  #opening: { held: PortfolioUpdate | null } | null = null;
  /** The highest `version` written to this socket: an older one is never sent after it. */
  #version: number | null = null;
  /** The latest update, held until the order event it reflects has gone out on this socket. */
  #waiting: PortfolioUpdate | null = null;
  #closed = false;

  constructor(sink: StreamSink, owner: StreamOwner, kind: PortfolioChannel, userId: number) {
    this.#sink = sink;
    this.#owner = owner;
    this.#kind = kind;
    this.userId = userId;
  }

  async open(_request: SubscribeRequest, reply: Reply): Promise<void> {
    const attempt: { held: PortfolioUpdate | null } = { held: null };
    this.#opening = attempt;
    const snapshot = await this.#kind.snapshot(this.userId);
    if (!this.#sink.isOpen || this.#opening !== attempt) return;
    if (this.#closed) {
      // The session ended (revoked, expired) while the snapshot was being read.
      reply({ type: 'error', code: 'auth_required', message: 'authenticate before subscribing to portfolio' });
      return;
    }
    const { held } = attempt;
    this.#opening = null;
    reply({ type: 'subscribed', channel: 'portfolio' });
    let sent = 0;
    if (snapshot && !(held && isAtLeastAsNew(held.event, snapshot))) {
      if (this.#offer(portfolioUpdate(snapshot))) sent += 1;
    }
    // A held update older than the snapshot is dropped by the version check.
    if (held && this.#offer(held)) sent += 1;
    this.#kind.deps.metrics.delivered('portfolio', sent);
  }

  deliver(update: PortfolioUpdate): boolean {
    if (this.#opening !== null) {
      // A portfolio is the user's whole state: only the newest one matters. Publishes can come
      // out of version order (several API relays), so a later arrival is not always newer.
      const { held } = this.#opening;
      if (held === null || isAtLeastAsNew(update.event, held.event)) this.#opening.held = update;
      return false;
    }
    return this.#offer(update);
  }

  orderProgress(): void {
    const waiting = this.#waiting;
    if (waiting === null || this.#closed) return;
    this.#waiting = null;
    if (this.#offer(waiting)) this.#kind.deps.metrics.delivered('portfolio');
  }

  /**
   * The held update reflects an order event the history does not hold: it is not this
   * database's (a portfolio stored in Redis before the database was reset, or a confused
   * publisher), and is never sent. When the socket has had no portfolio yet, the database's
   * is read instead.
   */
  orderUnreachable(): void {
    const waiting = this.#waiting;
    if (waiting === null || this.#closed) return;
    this.#waiting = null;
    this.#kind.deps.logger.warn(
      { userId: this.userId, version: waiting.event.version, orderSeq: waiting.event.orderSeq },
      'portfolio reflects an order event the history does not hold; not sent',
    );
    this.#kind.deps.metrics.dropped('inconsistent');
    if (this.#version === null) void this.#sendFromDatabase();
  }

  async #sendFromDatabase(): Promise<void> {
    const event = await this.#kind.load(this.userId);
    if (!event || this.#closed || !this.#sink.isOpen) return;
    if (this.#offer(portfolioUpdate(event))) this.#kind.deps.metrics.delivered('portfolio');
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#waiting = null;
    this.#orders()?.unfollow(this);
    this.#kind.leave(this);
  }

  /**
   * Writes `update` now, or holds it while the socket's order stream has not yet sent the
   * order event it reflects (`orderSeq`): a fill goes out before the portfolio it caused. Only
   * the newest update is held; an older one is dropped, as the version check would drop it.
   */
  #offer(update: PortfolioUpdate): boolean {
    const { version, orderSeq } = update.event;
    // This socket already has that version or a newer one.
    if (version !== undefined && this.#version !== null && version <= this.#version) return false;
    if (this.#waiting !== null && !isAtLeastAsNew(update.event, this.#waiting.event)) return false;
    const orders = this.#orders();
    if (orderSeq !== undefined && orders && !orders.reached(orderSeq)) {
      this.#waiting = update;
      orders.waitFor(orderSeq, this);
      return false;
    }
    this.#waiting = null;
    return this.#write(update);
  }

  /** The socket's order stream, when it has one. */
  #orders(): OrderStream | undefined {
    const peer = this.#owner.peer('orders');
    return peer instanceof OrderStream ? peer : undefined;
  }

  #write(update: PortfolioUpdate): boolean {
    const { version } = update.event;
    if (!this.#sink.sendFrame(update.frame)) return false;
    if (version !== undefined) this.#version = version;
    return true;
  }
}

/** Whether `event` is at least as new as `other` (by version when both have one). */
function isAtLeastAsNew(event: PortfolioUpdateEvent, other: PortfolioUpdateEvent): boolean {
  if (event.version !== undefined && other.version !== undefined) return event.version >= other.version;
  return Date.parse(event.timestamp) >= Date.parse(other.timestamp);
}
