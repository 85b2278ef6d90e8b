import { decodeEvent, EVENT_KINDS, type EventKind } from '@repo/events';
import type { ClientConnection } from './transport/connection.ts';
import type { GatewayMetrics } from './metrics.ts';
import type { PriceCache } from './streams/price-cache.ts';
import type { SubscriberIndex } from './streams/subscriber-index.ts';
import { encodeTextFrame } from './transport/text-frame.ts';
import type { ThrottledWarning } from './throttled-warning.ts';

/**
 * Turns raw broker messages into frames on recipients' sockets. Per event: one decode (zod,
 * which also strips unknown keys, so a publisher cannot smuggle fields to clients), one
 * `JSON.stringify`, one frame; then a walk over the recipients' index entry only. Private
 * events for users with no subscribed socket on this node cost a decode and a map lookup.
 */
export class EventFanout {
  readonly #index: SubscriberIndex<ClientConnection>;
  readonly #metrics: GatewayMetrics;
  readonly #prices: PriceCache;
  readonly #malformed: ThrottledWarning;
  readonly #onOrderGap: (connection: ClientConnection) => void;

  constructor(deps: {
    index: SubscriberIndex<ClientConnection>;
    metrics: GatewayMetrics;
    prices: PriceCache;
    malformedWarning: ThrottledWarning;
    /** A socket got an order event past `orderSeq + 1`: events before it must come from history. */
    onOrderGap?: (connection: ClientConnection) => void;
  }) {
    this.#index = deps.index;
    this.#metrics = deps.metrics;
    this.#prices = deps.prices;
    this.#malformed = deps.malformedWarning;
    this.#onOrderGap = deps.onOrderGap ?? (() => {});
  }

  /** The broker handler for each event kind's channel. */
  handlers(): { channel: string; handler: (raw: string) => void }[] {
    return (Object.keys(EVENT_KINDS) as EventKind[]).map((kind) => ({
      channel: EVENT_KINDS[kind].channel,
      handler: kind === 'price' ? this.#onPrice : (raw: string) => this.#onPrivate(kind, raw),
    }));
  }

  readonly #onPrice = (raw: string): void => {
    const decoded = decodeEvent('price', raw);
    if (!decoded.ok) return this.#drop('price', decoded.reason, decoded.detail);
    const event = decoded.event;
    const frame = encodeTextFrame(JSON.stringify({ type: 'price', ...event }));
    this.#prices.remember(event, frame);
    let sent = 0;
    for (const connection of this.#index.prices()) {
      if (connection.deliverPrice(event.symbol, frame, event)) sent += 1;
    }
    this.#metrics.delivered('price', sent);
    this.#metrics.eventLatency(event.timestamp, Date.now());
  };

  #onPrivate(kind: Exclude<EventKind, 'price'>, raw: string): void {
    const decoded = decodeEvent(kind, raw);
    if (!decoded.ok) return this.#drop(kind, decoded.reason, decoded.detail);
    const event = decoded.event;
    const channel = kind === 'portfolio' ? 'portfolio' : 'orders';
    const recipients = this.#index.ofUser(channel, event.userId);
    if (recipients.size === 0) return;
    const frame = encodeTextFrame(JSON.stringify({ type: kind, ...event }));
    let sent = 0;
    if (channel === 'orders') {
      const seq = (event as { seq?: number }).seq;
      // A copy: a gap handler may change the index while we walk it.
      for (const connection of [...recipients]) {
        const outcome = connection.deliverOrder(frame, seq);
        if (outcome === 'sent') sent += 1;
        else if (outcome === 'duplicate') this.#metrics.dropped('duplicate');
        else if (outcome === 'gap') this.#onOrderGap(connection);
      }
    } else {
      for (const connection of recipients) {
        if (connection.deliverPrivate(channel, frame, kind, event)) sent += 1;
      }
    }
    this.#metrics.delivered(kind, sent);
    this.#metrics.eventLatency(event.timestamp, Date.now());
  }

  #drop(kind: EventKind, reason: string, detail: string): void {
    this.#metrics.dropped('malformed');
    this.#malformed.warn(
      { channel: EVENT_KINDS[kind].channel, reason, detail: detail.slice(0, 200) },
      'dropped malformed broker event',
    );
  }
}
