import { Registry } from 'prom-client';
import type { OrderFilledEvent } from '@repo/events';
import { silentLogger } from '@repo/log';
import type { Channel, ReplyMessage, ServerMessage } from '@repo/protocol';
import { EVENT_CHANNELS } from '../src/broker-contract.ts';
import { resolveLimits, type GatewayLimits } from '../src/limits.ts';
import { GatewayMetrics } from '../src/metrics.ts';
import type { ChannelDeps, ChannelKind, Stream, StreamOwner, StreamSink } from '../src/streams/stream.ts';
import { ThrottledWarning } from '../src/throttled-warning.ts';
import { encodeTextFrame } from '../src/transport/text-frame.ts';

/** The JSON payload of one server frame built by `encodeTextFrame`. */
export function payloadOf(frame: Buffer): ServerMessage {
  const length = frame[1]! & 0x7f;
  const header = length < 126 ? 2 : length === 126 ? 4 : 10;
  return JSON.parse(frame.subarray(header).toString('utf8')) as ServerMessage;
}

/**
 * A connection as a stream sees it, without a socket: it keeps what was written in order, and
 * the test decides whether it is open, slow (frames keyed for conflation are held, latest per
 * key) or drained.
 */
export class FakeSink implements StreamSink {
  readonly id = 1;
  isOpen = true;
  /** Frames written, in order (the very Buffers handed over). */
  readonly frames: Buffer[] = [];
  /** While true, `sendLatest` holds frames (latest per key) instead of writing them. */
  slow = false;
  readonly #heldLatest = new Map<string, Buffer>();
  closedWith: { code: number; reason: string } | null = null;
  #drained: (() => void)[] = [];
  #closed: (() => void)[] = [];
  #waiters: { match: (m: ServerMessage) => boolean; resolve: () => void }[] = [];

  send(message: ServerMessage): boolean {
    return this.sendFrame(encodeTextFrame(JSON.stringify(message)));
  }

  sendFrame(frame: Buffer): boolean {
    if (!this.isOpen) return false;
    this.frames.push(frame);
    const message = payloadOf(frame);
    this.#waiters = this.#waiters.filter((waiter) => {
      if (!waiter.match(message)) return true;
      waiter.resolve();
      return false;
    });
    return true;
  }

  /** Resolves once a message that matches has been written (at once if one already was). */
  written(match: (m: ServerMessage) => boolean, timeoutMs = 3000): Promise<void> {
    if (this.messages().some(match)) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`nothing matching was written; got ${JSON.stringify(this.messages().slice(-5))}`)),
        timeoutMs,
      );
      this.#waiters.push({
        match,
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
      });
    });
  }

  sendLatest(key: string, frame: Buffer): boolean {
    if (!this.isOpen) return false;
    if (this.slow) {
      this.#heldLatest.delete(key);
      this.#heldLatest.set(key, frame);
      return false;
    }
    return this.sendFrame(frame);
  }

  forgetLatest(drop: (key: string) => boolean): void {
    for (const key of [...this.#heldLatest.keys()]) if (drop(key)) this.#heldLatest.delete(key);
  }

  /** The socket drains: held frames are written, waiting replays resume. */
  drain(): void {
    this.slow = false;
    for (const [key, frame] of [...this.#heldLatest]) {
      this.#heldLatest.delete(key);
      this.sendFrame(frame);
    }
    for (const resolve of this.#drained.splice(0)) resolve();
  }

  whenDrained(): Promise<void> {
    if (!this.slow) return Promise.resolve();
    return new Promise((resolve) => this.#drained.push(resolve));
  }

  closeSlowConsumer(): void {
    this.close(4008, 'slow consumer');
  }

  close(code: number, reason: string): void {
    if (!this.isOpen) return;
    this.isOpen = false;
    this.closedWith = { code, reason };
    for (const resolve of this.#closed.splice(0)) resolve();
  }

  /** Resolves once the stream closed the socket. */
  whenClosed(): Promise<void> {
    if (!this.isOpen) return Promise.resolve();
    return new Promise((resolve) => this.#closed.push(resolve));
  }

  /** Every message written so far. */
  messages(): ServerMessage[] {
    return this.frames.map(payloadOf);
  }

  /** The messages of one type written so far. */
  ofType<T extends ServerMessage['type']>(type: T): Extract<ServerMessage, { type: T }>[] {
    return this.messages().filter((m) => m.type === type) as Extract<ServerMessage, { type: T }>[];
  }
}

/** A session as a stream sees it: the socket's other streams, and the ones that ended themselves. */
export class FakeOwner implements StreamOwner {
  readonly streams = new Map<Channel, Stream>();
  readonly endedStreams: Stream[] = [];

  peer(channel: Channel): Stream | undefined {
    return this.streams.get(channel);
  }

  ended(stream: Stream): void {
    this.endedStreams.push(stream);
    stream.close();
  }
}

/** A reply function that keeps the replies. */
export function replies(): ReplyMessage[] & { reply: (message: ReplyMessage) => void } {
  const list = [] as unknown as ReplyMessage[] & { reply: (message: ReplyMessage) => void };
  list.reply = (message) => list.push(message);
  return list;
}

/** What a channel kind is handed, with a fresh metrics registry. */
export function channelDeps(limits: Partial<GatewayLimits> = {}): ChannelDeps & { registry: Registry } {
  const registry = new Registry();
  return {
    registry,
    limits: resolveLimits(limits),
    metrics: new GatewayMetrics(registry, { connections: () => 0, brokerUp: () => true }),
    logger: silentLogger,
    malformedWarning: new ThrottledWarning(silentLogger),
    dependencyWarning: new ThrottledWarning(silentLogger),
  };
}

/** A valid `order_filled` event of `userId` with `seq`. */
export function orderFilled(userId: number, seq: number): OrderFilledEvent {
  return {
    userId,
    orderId: 1000 + seq,
    side: 'buy',
    baseAsset: 'SOL',
    quoteAsset: 'USD',
    executedPrice: '100',
    executedSize: '1',
    fee: '0.01',
    timestamp: new Date(Date.UTC(2026, 0, 1, 0, 0, seq)).toISOString(),
    seq,
  };
}

/** The handler a channel kind routes the broker messages of the design's `channel` to. */
export function routeOf(kind: ChannelKind, channel: string): (raw: string) => void {
  const route = kind.routes.find((r) => EVENT_CHANNELS[r.kind] === channel);
  if (!route) throw new Error(`${kind.channel} does not listen to ${channel}`);
  return route.handler;
}
