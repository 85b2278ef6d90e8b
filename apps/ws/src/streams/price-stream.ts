import type { PriceUpdateEvent } from '@repo/events';
import type { SubscribeRequest } from '@repo/protocol';
import type { PriceChannel } from './price-channel.ts';
import type { Reply, Stream, StreamSink } from './stream.ts';

/** A live price tick, decoded and framed once for every subscriber. */
export interface PriceTick {
  readonly symbol: string;
  readonly event: PriceUpdateEvent;
  readonly frame: Buffer;
}

/** One socket's `prices` subscription. */
export class PriceStream implements Stream<PriceTick> {
  readonly channel = 'prices';
  readonly #sink: StreamSink;
  readonly #kind: PriceChannel;
  /** Ticks that arrived while the snapshot was read, latest per symbol; null once live. */
  #held: Map<string, PriceTick> | null = null;
  #closed = false;

  constructor(sink: StreamSink, kind: PriceChannel) {
    this.#sink = sink;
    this.#kind = kind;
  }

  async open(_request: SubscribeRequest, reply: Reply): Promise<void> {
    const held = new Map<string, PriceTick>();
    this.#held = held;
    const snapshot = await this.#kind.snapshot();
    if (this.#held !== held || this.#closed || !this.#sink.isOpen) return;
    this.#held = null;
    reply({ type: 'subscribed', channel: 'prices' });
    let sent = 0;
    for (const [symbol, frame] of snapshot) {
      // A tick that arrived during the read is live and at least as new: it follows below.
      if (!held.has(symbol) && this.#sink.sendFrame(frame)) sent += 1;
    }
    for (const tick of held.values()) if (this.#sink.sendLatest(tick.symbol, tick.frame)) sent += 1;
    this.#kind.deps.metrics.delivered('price', sent);
  }

  deliver(tick: PriceTick): boolean {
    if (this.#held !== null) {
      this.#held.delete(tick.symbol); // re-inserted so that the newest tick goes last
      this.#held.set(tick.symbol, tick);
      return false;
    }
    return this.#sink.sendLatest(tick.symbol, tick.frame);
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#held = null;
    this.#kind.leave(this);
  }
}
