import type { PriceUpdateEvent } from '@repo/events';
import { withTimeout } from '@repo/retry';
import { EVENT_CHANNELS } from '../broker-contract.ts';
import { encodeTextFrame } from '../transport/text-frame.ts';
import { PriceCache } from './price-cache.ts';
import { PriceStream, type PriceTick, type SymbolSet } from './price-stream.ts';
import {
  decodeOrDrop,
  type BrokerRoute,
  type ChannelDeps,
  type ChannelKind,
  type StreamOwner,
  type StreamSink,
} from './stream.ts';
import { SubscriberIndex } from './subscriber-index.ts';

/**
 * `prices`, for everyone: the latest price of every known symbol on subscribe, then live
 * ticks; a slow socket gets only the latest tick per symbol. A socket may ask for some symbols
 * only (`symbols`, among the configured ones).
 *
 * Routing is indexed: the streams that want every symbol in one set, the others under each
 * symbol they asked for. A tick is framed once and walks that set and its symbol's entry only,
 * so a socket that did not ask for a symbol is never visited for it. A stream is in exactly
 * one of the two places for a given symbol, so it is visited at most once per tick.
 */
export class PriceChannel implements ChannelKind {
  readonly channel = 'prices';
  readonly needsAuth = false;
  readonly routes: readonly BrokerRoute[];
  readonly deps: ChannelDeps;
  /** Streams that take every symbol. */
  readonly #everySymbol = new Set<PriceStream>();
  /** Streams that listed their symbols, under each of them. */
  readonly #bySymbol = new SubscriberIndex<string, PriceStream>();
  /** The configured symbols: the only ones a subscription may name. */
  readonly #served: ReadonlySet<string>;
  readonly #cache: PriceCache;
  readonly #readStored: (symbols: readonly string[]) => Promise<PriceUpdateEvent[]>;
  #storedRead: Promise<PriceUpdateEvent[]> | null = null;

  constructor(
    deps: ChannelDeps & {
      /**
       * The configured symbols: every snapshot carries their latest price (besides those seen
       * live), and they are the symbols a subscription may name.
       */
      symbols: readonly string[];
      /** The stored latest prices of `symbols` (the broker's latest-value store). */
      readStored: (symbols: readonly string[]) => Promise<PriceUpdateEvent[]>;
    },
  ) {
    this.deps = deps;
    this.#served = new Set(deps.symbols);
    this.#cache = new PriceCache(deps.symbols, deps.limits.maxSymbols);
    this.#readStored = deps.readStored;
    this.routes = [{ kind: 'price', handler: this.#onTick }];
  }

  /** A stream for `sink`; it joins the index when its first subscribe is accepted. */
  subscribe(sink: StreamSink, owner: StreamOwner): PriceStream {
    this.deps.metrics.subscribed('prices');
    return new PriceStream(sink, owner, this);
  }

  /** The symbols among `symbols` that this gateway does not serve. */
  unknownSymbols(symbols: Iterable<string>): string[] {
    const unknown: string[] = [];
    for (const symbol of symbols) if (!this.#served.has(symbol)) unknown.push(symbol);
    return unknown;
  }

  /** The symbols a subscription may name, for error messages. */
  servedSymbols(): string[] {
    return [...this.#served];
  }

  /**
   * Moves `stream` in the index from the symbols `from` to `to` (null: every symbol; undefined:
   * not indexed). Entries it keeps are not touched, so it misses no tick of them.
   */
  index(stream: PriceStream, from: SymbolSet | undefined, to: SymbolSet | undefined): void {
    if (from === null && to === null) return;
    if (from === null) this.#everySymbol.delete(stream);
    else if (from) for (const symbol of from) if (!to?.has(symbol)) this.#bySymbol.remove(symbol, stream);
    if (to === null) this.#everySymbol.add(stream);
    else if (to) for (const symbol of to) if (!from?.has(symbol)) this.#bySymbol.add(symbol, stream);
  }

  /** Called once by a closing stream, with the symbols it was indexed under. */
  leave(stream: PriceStream, symbols: SymbolSet | undefined): void {
    this.index(stream, symbols, undefined);
    this.deps.metrics.unsubscribed('prices');
  }

  /**
   * The snapshot frames of the symbols `include` accepts: the newer of the stored price and the
   * gateway's last live tick. One read of the store is shared by every subscription that starts while it is in
   * flight: a reconnect storm of thousands of clients costs one MGET, not thousands.
   */
  async snapshot(include: (symbol: string) => boolean): Promise<Map<string, Buffer>> {
    this.#storedRead ??= withTimeout(
      this.#readStored(this.#cache.symbols()),
      this.deps.limits.snapshotTimeoutMs,
      'price snapshot',
    )
      .catch((err: unknown) => {
        this.deps.dependencyWarning.warn(
          { err: (err as Error).message },
          'price snapshot read failed; using live cache only',
        );
        return [];
      })
      .finally(() => {
        this.#storedRead = null;
      });
    const stored = new Map((await this.#storedRead).map((event) => [event.symbol, event]));
    const frames = new Map<string, Buffer>();
    // Read now, not before the await: a symbol first seen live meanwhile is in the cache.
    for (const symbol of new Set([...this.#cache.symbols(), ...stored.keys()])) {
      if (!include(symbol)) continue;
      const live = this.#cache.get(symbol);
      const kept = stored.get(symbol);
      // Ties go to the live tick, whose frame is already built.
      if (live && (!kept || Date.parse(live.event.timestamp) >= Date.parse(kept.timestamp))) {
        frames.set(symbol, live.frame);
      } else if (kept) {
        frames.set(symbol, encodeTextFrame(JSON.stringify({ type: 'price', ...kept })));
      }
    }
    return frames;
  }

  readonly #onTick = (raw: string, channel = EVENT_CHANNELS.price): void => {
    const event = decodeOrDrop(this.deps, 'price', channel, raw);
    if (!event) return;
    const tick: PriceTick = {
      symbol: event.symbol,
      event,
      frame: encodeTextFrame(JSON.stringify({ type: 'price', ...event })),
    };
    this.#cache.remember(event, tick.frame);
    let sent = 0;
    for (const stream of this.#everySymbol) if (stream.deliver(tick)) sent += 1;
    for (const stream of this.#bySymbol.get(event.symbol)) if (stream.deliver(tick)) sent += 1;
    this.deps.metrics.delivered('price', sent);
    this.deps.metrics.eventLatency(event.timestamp, Date.now());
  };
}
