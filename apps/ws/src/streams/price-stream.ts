import type { PriceUpdateEvent } from '@repo/events';
import type { SubscribeRequest } from '@repo/protocol';
import type { PriceChannel } from './price-channel.ts';
import type { Reply, Stream, StreamOwner, StreamSink } from './stream.ts';

/** A live price tick, decoded and framed once for every subscriber. */
export interface PriceTick {
  readonly symbol: string;
  readonly event: PriceUpdateEvent;
  readonly frame: Buffer;
}

/** The symbols a stream asked for: the listed ones, or null for every symbol. */
export type SymbolSet = ReadonlySet<string> | null;

const NO_SYMBOLS: ReadonlySet<string> = new Set();

/** Whether `set` takes ticks of `symbol`. */
function covers(set: SymbolSet, symbol: string): boolean {
  return set === null || set.has(symbol);
}

/**
 * One socket's `prices` subscription and the symbols it asked for. Opening it again replaces
 * the set: the symbols it keeps stay live without a break (no tick lost, no snapshot sent
 * again), the ones it drops stop at once (held conflated ticks included), and only the ones it
 * adds get a snapshot, with their live ticks held until that snapshot is written.
 */
export class PriceStream implements Stream<PriceTick> {
  readonly channel = 'prices';
  readonly #sink: StreamSink;
  readonly #owner: StreamOwner;
  readonly #kind: PriceChannel;
  /** What the socket asked for; undefined until a subscribe was accepted (then it is indexed). */
  #symbols: SymbolSet | undefined = undefined;
  /**
   * While a snapshot is read: the symbols that were live before this open and still are (their
   * ticks go straight out), and the latest tick of each other symbol, held to follow the
   * snapshot. Null once live.
   */
  #opening: { live: ReadonlySet<string>; held: Map<string, PriceTick> } | null = null;
  #closed = false;

  constructor(sink: StreamSink, owner: StreamOwner, kind: PriceChannel) {
    this.#sink = sink;
    this.#owner = owner;
    this.#kind = kind;
  }

  open(request: SubscribeRequest, reply: Reply): void | Promise<void> {
    const wanted: SymbolSet = request.symbols === undefined ? null : new Set(request.symbols);
    const unknown = wanted === null ? [] : this.#kind.unknownSymbols(wanted);
    if (unknown.length > 0) {
      // Nothing changes; a socket that was not subscribed yet stays unsubscribed.
      if (this.#symbols === undefined) this.#owner.ended(this);
      reply({
        type: 'error',
        code: 'unknown_symbol',
        message: `unknown symbol ${unknown.join(', ')}; served: ${this.#kind.servedSymbols().join(', ')}`,
      });
      return;
    }
    const before = this.#symbols;
    this.#kind.index(this, before, wanted);
    this.#symbols = wanted;
    // Ticks of dropped symbols held for a slow socket must not follow the reply.
    if (before !== undefined && wanted !== null) this.#sink.forgetLatest((symbol) => !wanted.has(symbol));
    const acknowledgement = {
      type: 'subscribed' as const,
      channel: 'prices' as const,
      ...(request.symbols === undefined ? {} : { symbols: request.symbols }),
    };
    // What the socket really has live: an open still reading its snapshot has not written its
    // added symbols yet (the request queue makes that rare: one request at a time per socket).
    const live = this.#opening?.live ?? (before === undefined ? NO_SYMBOLS : before);
    if (live === null || (wanted !== null && [...wanted].every((symbol) => live.has(symbol)))) {
      // Every symbol wanted is already live: no snapshot to read, nothing to hold.
      this.#opening = null;
      reply(acknowledgement);
      return;
    }
    return this.#openWithSnapshot(wanted, live, () => reply(acknowledgement));
  }

  async #openWithSnapshot(wanted: SymbolSet, live: ReadonlySet<string>, acknowledge: () => void): Promise<void> {
    const opening = { live, held: new Map<string, PriceTick>() };
    this.#opening = opening;
    // The symbols the socket already has live need no snapshot: it would only repeat them.
    const snapshot = await this.#kind.snapshot((symbol) => covers(wanted, symbol) && !live.has(symbol));
    if (this.#opening !== opening || this.#closed || !this.#sink.isOpen) return;
    this.#opening = null;
    acknowledge();
    const { held } = opening;
    let sent = 0;
    for (const [symbol, frame] of snapshot) {
      // A tick that arrived during the read is live and at least as new: it follows below.
      if (!held.has(symbol) && this.#sink.sendFrame(frame)) sent += 1;
    }
    for (const tick of held.values()) if (this.#sink.sendLatest(tick.symbol, tick.frame)) sent += 1;
    this.#kind.deps.metrics.delivered('price', sent);
  }

  /** A tick of a symbol this stream asked for (the channel's index sees to that). */
  deliver(tick: PriceTick): boolean {
    const opening = this.#opening;
    if (opening !== null && !opening.live.has(tick.symbol)) {
      opening.held.delete(tick.symbol); // re-inserted so that the newest tick goes last
      opening.held.set(tick.symbol, tick);
      return false;
    }
    return this.#sink.sendLatest(tick.symbol, tick.frame);
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#opening = null;
    // After `unsubscribed`, not even a tick held for a slow socket goes out.
    if (this.#symbols !== undefined) this.#sink.forgetLatest(() => true);
    this.#kind.leave(this, this.#symbols);
  }
}
