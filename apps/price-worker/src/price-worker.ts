import type { EventPublisher, PriceStore } from '@repo/broker';
import { EventValidationError, symbol as symbolSchema, type PriceUpdateEvent } from '@repo/events';
import { silentLogger, type Logger } from '@repo/log';
import { backoffDelay } from '@repo/retry';
import type { PriceQuote, PriceSource, PriceStream } from './price-source.ts';
import { compareQuotes, PublishOrder, type OrderVerdict } from './publish-order.ts';

export interface PriceWorkerOptions {
  /** Polled every `intervalMs`; with a `stream`, only while the stream is down. */
  source: PriceSource;
  /** Pushes quotes as they happen; the worker opens it on `start()` and closes it on `stop()`. */
  stream?: PriceStream;
  prices: PriceStore;
  publisher: EventPublisher;
  /** Symbols to price, e.g. `['SOL', 'BTC', 'ETH']`. */
  symbols: string[];
  /** Time between polls while healthy. Default 1000 ms. */
  intervalMs?: number;
  /** Ceiling of the backoff after consecutive failed polls. Default 30000 ms. */
  maxBackoffMs?: number;
  logger?: Logger;
  /** Clock for the event timestamp when a quote has none. Default `() => new Date()`. */
  now?: () => Date;
  /** For tests: the backoff's jitter. */
  random?: () => number;
}

export interface TickResult {
  /** False when the read failed or the broker refused a write; the next tick tries again. */
  ok: boolean;
  /** The events stored and published by this tick, in order. */
  published: PriceUpdateEvent[];
  /** Why the tick failed (when `ok` is false). */
  error?: { code: string; message: string; retryAfterMs?: number };
}

export interface PriceWorkerStats {
  /** `stream` while the stream is up (polling paused), else `poll`. */
  transport: 'stream' | 'poll';
  /** Events stored and published. */
  published: number;
  /** Quotes dropped because they were older than the last published one of their symbol. */
  droppedOlder: number;
  /** Quotes dropped because the same publish time and price were already published. */
  droppedRepeated: number;
  /** Streamed quotes replaced by a newer one of their symbol before the broker took them. */
  coalesced: number;
  /** Polls that failed. */
  failedTicks: number;
  /** Streamed quotes the broker refused (the next one tries again). */
  failedStreamWrites: number;
}

export interface PriceWorker {
  /** Polls every `intervalMs` (with a stream: opens it, and polls only while it is down). */
  start(): void;
  /** Stops the loop and the stream, aborts an in-flight read and resolves once nothing runs. */
  stop(): Promise<void>;
  /** One read + setPrice + publish. Never rejects; runs after any write already running. */
  tick(): Promise<TickResult>;
  stats(): PriceWorkerStats;
}

const MIN_INTERVAL_MS = 10;

/**
 * The design's price-ingestion worker: each quote is stored (`setPrice`, so a snapshot is never
 * older than the last event), then published, unless it would step back in time. Quotes come
 * from polling the source each tick, or from the stream while it is up. Writes never overlap:
 * polls and streamed quotes run one after another on one chain.
 *
 * The worker does not own the source: whoever created it closes it.
 */
export function createPriceWorker(options: PriceWorkerOptions): PriceWorker {
  const { source, stream, prices, publisher } = options;
  const symbols = [...options.symbols];
  if (symbols.length === 0) throw new RangeError('price worker: symbols must not be empty');
  for (const symbol of symbols) {
    if (!symbolSchema.safeParse(symbol).success) {
      throw new RangeError(`price worker: symbol ${JSON.stringify(symbol)} must be 1-16 characters of A-Z and 0-9`);
    }
  }
  const intervalMs = options.intervalMs ?? 1000;
  if (!Number.isFinite(intervalMs) || intervalMs < MIN_INTERVAL_MS) {
    throw new RangeError(
      `price worker: intervalMs must be at least ${MIN_INTERVAL_MS}, got ${String(options.intervalMs)}`,
    );
  }
  const maxBackoffMs = Math.max(intervalMs, options.maxBackoffMs ?? 30_000);
  const logger = options.logger ?? silentLogger;
  const now = options.now ?? (() => new Date());
  const random = options.random ?? Math.random;
  const wanted = new Set(symbols);
  const order = new PublishOrder();
  const counts = {
    published: 0,
    droppedOlder: 0,
    droppedRepeated: 0,
    coalesced: 0,
    failedTicks: 0,
    failedStreamWrites: 0,
  };

  // Polls and streamed quotes run one after another on this chain, whoever asks for them.
  let chain: Promise<unknown> = Promise.resolve();
  let inFlight: AbortController | undefined;
  let consecutiveFailures = 0;
  let lastTickStartedAt = Number.NEGATIVE_INFINITY;
  // Bumped by start() and stop(): a loop callback from an older generation does nothing.
  let generation = 0;
  let looping = false;
  let loopTickRunning = false;
  let timer: NodeJS.Timeout | undefined;
  let streamUp = false;
  // Streamed quotes waiting for the chain, the newest per symbol: a slow broker coalesces them
  // instead of queueing without bound.
  const pending = new Map<string, PriceQuote>();
  let draining = false;
  let streamWriteFailures = 0;

  /** Stores and publishes `quote` unless it steps back in time; throws what the broker throws. */
  async function write(quote: PriceQuote, fallbackTime: string): Promise<PriceUpdateEvent | undefined> {
    if (dropped(quote, order.judge(quote))) return undefined;
    try {
      const event = await prices.setPrice(quote.symbol, quote.price, quote.publishTime ?? fallbackTime);
      // The same timestamp as the stored snapshot, so a client can match the two.
      const published = await publisher.publishPriceUpdate(event.symbol, event.price, event.timestamp);
      order.record(quote);
      counts.published++;
      return published;
    } catch (err) {
      // A quote the event schema refuses is this quote's problem, not the broker's.
      if (!(err instanceof EventValidationError)) throw err;
      logger.warn(
        { symbol: quote.symbol, price: quote.price, err: err.message },
        'price quote rejected, not published',
      );
      return undefined;
    }
  }

  /** Counts and reports a quote that would step back in time or repeat itself. */
  function dropped(quote: PriceQuote, verdict: OrderVerdict): boolean {
    if (verdict === 'older') {
      counts.droppedOlder++;
      logger.debug({ symbol: quote.symbol, publishTime: quote.publishTime }, 'older price dropped');
      return true;
    }
    if (verdict === 'repeat') {
      counts.droppedRepeated++;
      return true;
    }
    return false;
  }

  async function runTick(): Promise<TickResult> {
    const controller = new AbortController();
    inFlight = controller;
    lastTickStartedAt = Date.now();
    const tickTime = now().toISOString();
    const published: PriceUpdateEvent[] = [];
    try {
      const quotes = await source.read(symbols, { signal: controller.signal });
      for (const quote of quotes) {
        if (!wanted.has(quote.symbol)) continue;
        const event = await write(quote, tickTime);
        if (event) published.push(event);
      }
      if (consecutiveFailures > 0) logger.info({ failedTicks: consecutiveFailures }, 'price ticks recovered');
      consecutiveFailures = 0;
      logger.debug({ prices: published.map((e) => `${e.symbol}=${e.price}`) }, 'price tick');
      return { ok: true, published };
    } catch (err) {
      consecutiveFailures += 1;
      counts.failedTicks++;
      const error = describeError(err);
      logger.warn(
        { ...error, consecutiveFailures, publishedBeforeFailure: published.length },
        'price tick failed, last price kept',
      );
      return { ok: false, published, error };
    } finally {
      if (inFlight === controller) inFlight = undefined;
    }
  }

  function tick(): Promise<TickResult> {
    const result = chain.then(runTick);
    chain = result;
    return result;
  }

  async function drain(): Promise<void> {
    while (pending.size > 0) {
      const batch = [...pending.values()];
      pending.clear();
      const fallbackTime = now().toISOString();
      for (const quote of batch) {
        try {
          await write(quote, fallbackTime);
          if (streamWriteFailures > 0)
            logger.info({ failedWrites: streamWriteFailures }, 'streamed prices stored again');
          streamWriteFailures = 0;
        } catch (err) {
          counts.failedStreamWrites++;
          streamWriteFailures++;
          // The next update of the symbol tries again within a second: one warning per outage.
          const line = { ...describeError(err), symbol: quote.symbol, failedWrites: streamWriteFailures };
          if (streamWriteFailures === 1) logger.warn(line, 'streamed price not stored, last price kept');
          else logger.debug(line, 'streamed price not stored, last price kept');
        }
      }
    }
    draining = false;
  }

  function onStreamQuotes(quotes: PriceQuote[]): void {
    for (const quote of quotes) {
      if (!wanted.has(quote.symbol)) continue;
      const waiting = pending.get(quote.symbol);
      if (waiting && dropped(quote, compareQuotes(waiting, quote))) continue;
      if (waiting) counts.coalesced++;
      pending.set(quote.symbol, quote);
    }
    if (draining || pending.size === 0) return;
    draining = true;
    chain = chain.then(drain);
  }

  function onStreamState(up: boolean): void {
    if (up === streamUp) return;
    streamUp = up;
    // The stream reports why at warn; these lines say what the worker does about it.
    if (up) {
      logger.info('price stream up; polling paused');
      clearTimeout(timer);
      timer = undefined;
    } else {
      logger.info('price stream down; polling until it is back');
      if (looping && timer === undefined && !loopTickRunning) {
        schedule(Math.max(0, lastTickStartedAt + intervalMs - Date.now()), generation);
      }
    }
  }

  function schedule(delayMs: number, loopGeneration: number): void {
    timer = setTimeout(() => {
      timer = undefined;
      if (streamUp) return; // the stream's going down schedules the next poll
      loopTickRunning = true;
      void tick().then((result) => {
        loopTickRunning = false;
        if (loopGeneration !== generation || streamUp) return;
        schedule(nextDelayMs(result), loopGeneration);
      });
    }, delayMs);
  }

  function nextDelayMs(result: TickResult): number {
    if (result.ok) return Math.max(0, lastTickStartedAt + intervalMs - Date.now());
    return failedTickDelayMs(consecutiveFailures, {
      intervalMs,
      maxBackoffMs,
      retryAfterMs: result.error?.retryAfterMs,
      random,
    });
  }

  return {
    start() {
      if (looping) return;
      looping = true;
      generation += 1;
      stream?.open(symbols, { quotes: onStreamQuotes, state: onStreamState });
      // A tick that just ran (e.g. the launcher's first one) counts as this interval's tick.
      schedule(Math.max(0, lastTickStartedAt + intervalMs - Date.now()), generation);
    },
    async stop() {
      const wasLooping = looping;
      looping = false;
      generation += 1;
      clearTimeout(timer);
      timer = undefined;
      inFlight?.abort();
      if (wasLooping) await stream?.close();
      streamUp = false;
      pending.clear();
      await chain;
    },
    tick,
    stats() {
      return { transport: streamUp ? 'stream' : 'poll', ...counts };
    },
  };
}

/**
 * Delay before the next poll after `failures` consecutive failed ones: `@repo/retry`'s full
 * jitter, doubling from `intervalMs` up to `maxBackoffMs`, but never sooner than the healthy
 * interval (a failing source is not asked more often than a working one) nor than the source's
 * Retry-After.
 */
export function failedTickDelayMs(
  failures: number,
  options: { intervalMs: number; maxBackoffMs: number; retryAfterMs?: number | undefined; random?: () => number },
): number {
  const jittered = backoffDelay(
    Math.max(failures - 1, 0),
    { baseDelayMs: options.intervalMs * 2, maxDelayMs: options.maxBackoffMs },
    options.random,
  );
  return Math.max(options.intervalMs, jittered, options.retryAfterMs ?? 0);
}

function describeError(err: unknown): { code: string; message: string; retryAfterMs?: number } {
  const e = err as { code?: unknown; message?: unknown; retryAfterMs?: unknown } | null;
  const code = typeof e?.code === 'string' ? e.code : 'tick_failed';
  const message = typeof e?.message === 'string' ? e.message : String(err);
  return typeof e?.retryAfterMs === 'number' ? { code, message, retryAfterMs: e.retryAfterMs } : { code, message };
}
