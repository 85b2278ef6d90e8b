import { decodeEvent, type EventKind, type EventOf } from '@repo/events';
import type { Logger } from '@repo/log';
import type { Channel, ReplyMessage, ServerMessage, SubscribeRequest } from '@repo/protocol';
import type { GatewayLimits } from '../limits.ts';
import type { DisconnectReason, GatewayMetrics } from '../metrics.ts';
import type { ThrottledWarning } from '../throttled-warning.ts';

/** What a stream writes to: the transport side of its socket (`Connection`). */
export interface StreamSink {
  /** For log lines. */
  readonly id: number;
  readonly isOpen: boolean;
  /** Serialises a message for this socket alone. */
  send(message: ServerMessage): boolean;
  /** Writes a frame that must not be dropped; past the hard limit the socket is closed with 4008 instead. */
  sendFrame(frame: Buffer): boolean;
  /** Writes a frame that a newer one with the same key replaces while the socket is slow. */
  sendLatest(key: string, frame: Buffer): boolean;
  /** Drops the frames held by `sendLatest` whose key `drop` accepts: no longer wanted. */
  forgetLatest(drop: (key: string) => boolean): void;
  /** Resolves once the socket's send buffer is below the soft limit (or it closed). */
  whenDrained(): Promise<void>;
  /** Closes the socket with 4008. */
  closeSlowConsumer(): void;
  close(code: number, reason: string, why: DisconnectReason): void;
}

/** Answers the subscribe request that opened a stream (the request id is echoed for it). */
export type Reply = (message: ReplyMessage) => void;

/** What a stream sees of the session that owns it. */
export interface StreamOwner {
  /** The socket's stream on another channel, when it has one. */
  peer(channel: Channel): Stream | undefined;
  /** The stream cannot go on (its history cannot be read): the session forgets and closes it. */
  ended(stream: Stream): void;
}

/**
 * One socket's subscription to one channel, with its own position. A stream is indexed (so it
 * receives live events) before it opens; what arrives before it is open is held by the stream
 * itself and follows the snapshot or replay, so nothing falls between the two.
 */
export interface Stream<Delivery = never> {
  readonly channel: Channel;
  /**
   * Answers the subscribe request (`subscribed`, or an error) and writes what must come before
   * live events: a snapshot or a replay. Opening an open stream starts it again. Resolves when
   * the stream is live or has given up; the socket's next request waits for it.
   */
  open(request: SubscribeRequest, reply: Reply): void | Promise<void>;
  /**
   * A live event, decoded and framed once for all its recipients (the same object is handed to
   * every stream). True when it was written to the socket now.
   */
  deliver(delivery: Delivery): boolean;
  /** Ends the stream: it leaves the index, drops what it holds, writes nothing more. Idempotent. */
  close(): void;
}

/**
 * An event kind and what handles its broker messages. Which broker channels carry the kind is
 * the feed's business (the channel layout): one design channel, or one per partition or symbol
 * on a Redis Cluster. `channel` is the one a message arrived on, for log lines.
 */
export interface BrokerRoute {
  readonly kind: EventKind;
  readonly handler: (raw: string, channel?: string) => void;
}

/**
 * A channel the gateway serves: who may subscribe, how a socket's stream is made, and how a
 * broker message reaches the streams (one decode and one frame per event, then a walk over
 * the recipients' index entry only). Adding a channel means adding one of these.
 */
export interface ChannelKind {
  readonly channel: Channel;
  /** Only an authenticated session may subscribe. */
  readonly needsAuth: boolean;
  /** The event kinds this kind listens to. */
  readonly routes: readonly BrokerRoute[];
  /**
   * Makes `sink`'s stream on this channel and indexes it. `userId` is the session's user (null
   * when anonymous, which only a public channel accepts).
   */
  subscribe(sink: StreamSink, owner: StreamOwner, userId: number | null): Stream;
  /**
   * The broker is back after an outage: recover what may have been published meanwhile. May
   * resolve later (for tests); never rejects.
   */
  resumed?(): void | Promise<void>;
}

/** What every channel kind is handed. */
export interface ChannelDeps {
  readonly limits: GatewayLimits;
  readonly metrics: GatewayMetrics;
  readonly logger: Logger;
  /** For events that fail their schema (one line per interval). */
  readonly malformedWarning: ThrottledWarning;
  /** For reads that fail while the database or Redis is down (one line per interval). */
  readonly dependencyWarning: ThrottledWarning;
}

/** Decodes a broker message of `kind`; one that fails is counted, logged and dropped (null). */
export function decodeOrDrop<K extends EventKind>(
  deps: ChannelDeps,
  kind: K,
  channel: string,
  raw: string,
): EventOf<K> | null {
  const decoded = decodeEvent(kind, raw);
  if (decoded.ok) return decoded.event;
  dropMalformed(
    deps,
    { channel, reason: decoded.reason, detail: decoded.detail.slice(0, 200) },
    'dropped malformed broker event',
  );
  return null;
}

/** Counts and logs a broker or stored event that failed its schema. */
export function dropMalformed(deps: ChannelDeps, fields: Record<string, unknown>, message: string): void {
  deps.metrics.dropped('malformed');
  deps.malformedWarning.warn(fields, message);
}
