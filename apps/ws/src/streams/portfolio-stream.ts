import type { PortfolioUpdateEvent } from '@repo/events';
import type { SubscribeRequest } from '@repo/protocol';
import { encodeTextFrame } from '../transport/text-frame.ts';
import type { PortfolioChannel } from './portfolio-channel.ts';
import type { Reply, Stream, StreamOwner, StreamSink } from './stream.ts';

/** A portfolio event, decoded and framed once for all of its user's sockets. */
export interface PortfolioUpdate {
  readonly event: PortfolioUpdateEvent;
  readonly frame: Buffer;
}

/** One socket's `portfolio` subscription. */
export class PortfolioStream implements Stream<PortfolioUpdate> {
  readonly channel = 'portfolio';
  readonly userId: number;
  readonly #sink: StreamSink;
  readonly #kind: PortfolioChannel;
  /** While the snapshot is read: the latest live update that arrived meanwhile. */
  #opening: { held: PortfolioUpdate | null } | null = null;
  /** The highest `version` written to this socket: an older one is never sent after it. */
  #version: number | null = null;
  #closed = false;

  constructor(sink: StreamSink, _owner: StreamOwner, kind: PortfolioChannel, userId: number) {
    this.#sink = sink;
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
      if (this.#write({ event: snapshot, frame: encodeTextFrame(JSON.stringify({ type: 'portfolio', ...snapshot })) }))
        sent += 1;
    }
    // A held update older than the snapshot is dropped by the version check.
    if (held && this.#write(held)) sent += 1;
    this.#kind.deps.metrics.delivered('portfolio', sent);
  }

  deliver(update: PortfolioUpdate): boolean {
    if (this.#opening !== null) {
      // A portfolio is the user's whole state: only the latest one matters.
      this.#opening.held = update;
      return false;
    }
    return this.#write(update);
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#kind.leave(this);
  }

  /** Writes `update` unless this socket already has that version or a newer one. */
  #write(update: PortfolioUpdate): boolean {
    const { version } = update.event;
    if (version !== undefined && this.#version !== null && version <= this.#version) return false;
    if (!this.#sink.sendFrame(update.frame)) return false;
    if (version !== undefined) this.#version = version;
    return true;
  }
}

/** Whether `event` makes `snapshot` redundant (by version when both have one). */
function isAtLeastAsNew(event: PortfolioUpdateEvent, snapshot: PortfolioUpdateEvent): boolean {
  if (event.version !== undefined && snapshot.version !== undefined) return event.version >= snapshot.version;
  return Date.parse(event.timestamp) >= Date.parse(snapshot.timestamp);
}
