import { EVENT_CHANNELS } from '../broker-contract.ts';
import { encodeTextFrame } from '../transport/text-frame.ts';
import type { HistoryReader } from './history-reader.ts';
import { OrderStream, type OrderEvent, type OrderKind } from './order-stream.ts';
import { SubscriberIndex } from './subscriber-index.ts';
import {
  decodeOrDrop,
  type BrokerRoute,
  type ChannelDeps,
  type ChannelKind,
  type StreamOwner,
  type StreamSink,
} from './stream.ts';

/**
 * `orders`, for its user only: every order event exactly once and in `seq` order per socket,
 * recovered from the history (the outbox) after a reconnect (`since`), a lost event (a gap in
 * `seq`) or a broker outage. Without a history the stream is plain live delivery.
 */
export class OrderChannel implements ChannelKind {
  readonly channel = 'orders';
  readonly needsAuth = true;
  readonly routes: readonly BrokerRoute[];
  readonly deps: ChannelDeps;
  /** The users' order-event history, null when the gateway has none. */
  readonly history: HistoryReader | null;
  readonly #members = new SubscriberIndex<number, OrderStream>();

  constructor(deps: ChannelDeps & { history: HistoryReader | null }) {
    this.deps = deps;
    this.history = deps.history;
    this.routes = (['order_filled', 'order_rejected'] as const).map((kind) => ({
      kind,
      handler: (raw: string, channel?: string) => this.#onOrder(kind, raw, channel),
    }));
  }

  subscribe(sink: StreamSink, owner: StreamOwner, userId: number | null): OrderStream {
    if (userId === null) throw new Error('an order stream needs a user');
    const stream = new OrderStream(sink, owner, this, userId);
    this.#members.add(userId, stream);
    this.deps.metrics.subscribed('orders');
    return stream;
  }

  /** Called by a closing stream. */
  leave(stream: OrderStream): void {
    if (this.#members.remove(stream.userId, stream)) this.deps.metrics.unsubscribed('orders');
  }

  /**
   * After a broker outage events may have been published while this gateway was not
   * subscribed: every stream checks the history (one merged read per user and position) and
   * gets what it missed.
   */
  resumed(): void {
    if (!this.history) return;
    this.history.resumed();
    for (const userId of [...this.#members.keys()]) {
      for (const stream of [...this.#members.get(userId)]) stream.recover();
    }
  }

  #onOrder(kind: OrderKind, raw: string, channel = EVENT_CHANNELS[kind]): void {
    const event = decodeOrDrop(this.deps, kind, channel, raw);
    if (!event) return;
    // Before the streams get it: the reads they start because of it (a gap) share a fresh query.
    this.history?.liveEvent(event.userId);
    const recipients = this.#members.get(event.userId);
    if (recipients.size === 0) return;
    const order: OrderEvent = {
      kind,
      seq: event.seq,
      frame: encodeTextFrame(JSON.stringify({ type: kind, ...event })),
    };
    let sent = 0;
    // A copy: a stream that gives up leaves the index while we walk it.
    for (const stream of [...recipients]) if (stream.deliver(order)) sent += 1;
    this.deps.metrics.delivered(kind, sent);
    this.deps.metrics.eventLatency(event.timestamp, Date.now());
  }
}
