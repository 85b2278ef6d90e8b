import type { PriceUpdateEvent } from '@repo/events';
import { withTimeout } from '@repo/retry';
import { EVENT_CHANNELS } from '../broker-contract.ts';
import { encodeTextFrame } from '../transport/text-frame.ts';
import { PriceCache } from './price-cache.ts';
import { PriceStream, type PriceTick } from './price-stream.ts';
import { decodeOrDrop, type BrokerRoute, type ChannelDeps, type ChannelKind, type StreamSink } from './stream.ts';

/**
 * `prices`, for everyone: the latest price of every known symbol on subscribe, then live
 * ticks; a slow socket gets only the latest tick per symbol.
 *
 * Routing walks one set of every subscribed stream. Filtering by symbol would index streams
 * by symbol here (plus a set for "all") and walk the tick's symbol entry: still one frame per
 * tick, still only recipients visited.
 */
export class PriceChannel implements ChannelKind {
  readonly channel = 'prices';
  readonly needsAuth = false;
  readonly routes: readonly BrokerRoute[];
  readonly deps: ChannelDeps;
  readonly #members = new Set<PriceStream>();
  readonly #cache: PriceCache;
  readonly #readStored: (symbols: readonly string[]) => Promise<PriceUpdateEvent[]>;
  #storedRead: Promise<PriceUpdateEvent[]> | null = null;

  constructor(
    deps: ChannelDeps & {
      /** Symbols whose latest price every snapshot carries, besides those seen live. */
      symbols: readonly string[];
      /** The stored latest prices of `symbols` (the broker's latest-value store). */
      readStored: (symbols: readonly string[]) => Promise<PriceUpdateEvent[]>;
    },
  ) {
    this.deps = deps;
    this.#cache = new PriceCache(deps.symbols, deps.limits.maxSymbols);
    this.#readStored = deps.readStored;
    this.routes = [{ kind: 'price', handler: this.#onTick }];
  }

  subscribe(sink: StreamSink): PriceStream {
    const stream = new PriceStream(sink, this);
    this.#members.add(stream);
    this.deps.metrics.subscribed('prices');
    return stream;
  }

  /** Called by a closing stream. */
  leave(stream: PriceStream): void {
    if (this.#members.delete(stream)) this.deps.metrics.unsubscribed('prices');
  }

  /**
   * The snapshot frames, by symbol: the newer of the stored price and the gateway's last live
   * tick. One read of the store is shared by every subscription that starts while it is in
   * flight: a reconnect storm of thousands of clients costs one MGET, not thousands.
   */
  async snapshot(): Promise<Map<string, Buffer>> {
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
    for (const stream of this.#members) if (stream.deliver(tick)) sent += 1;
    this.deps.metrics.delivered('price', sent);
    this.deps.metrics.eventLatency(event.timestamp, Date.now());
  };
}
