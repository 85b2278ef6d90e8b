import type { EventPublisher, PriceStore } from '@repo/broker';
import { EventValidationError, symbol as symbolSchema, type PriceUpdateEvent } from '@repo/events';
import { silentLogger, type Logger } from '@repo/log';
import type { PriceSource } from './price-source.ts';

export interface PriceWorkerOptions {
  source: PriceSource;
  prices: PriceStore;
  publisher: EventPublisher;
  /** Symbols to read each tick, e.g. `['SOL']`. */
  symbols: string[];
  /** Time between tick starts while healthy. Default 1000 ms. */
  intervalMs?: number;
  /** Ceiling of the backoff after consecutive failed ticks. Default 30000 ms. */
  maxBackoffMs?: number;
  logger?: Logger;
  /** Clock for the event timestamp when a quote has none. Default `() => new Date()`. */
  now?: () => Date;
}

export interface TickResult {
  /** False when the read failed or the broker refused a write; the next tick tries again. */
  ok: boolean;
  /** The events stored and published by this tick, in order. */
  published: PriceUpdateEvent[];
  /** Why the tick failed (when `ok` is false). */
  error?: { code: string; message: string; retryAfterMs?: number };
}

export interface PriceWorker {
  /** Ticks every `intervalMs` until `stop()`; after failures, with capped exponential backoff. */
  start(): void;
  /** Stops the loop, aborts an in-flight read and resolves once a running tick has finished. */
  stop(): Promise<void>;
  /** One read + setPrice + publish. Never rejects; runs after any tick already running. */
  tick(): Promise<TickResult>;
}

const MIN_INTERVAL_MS = 10;

/**
 * The design's price-ingestion worker: each tick reads the source, then for each quote stores
 * it (`setPrice`, so a snapshot is never older than the last event) and publishes it. A failed
 * tick is logged and retried on the next one; ticks never overlap.
 *
 * The worker does not own the source: whoever created it closes it.
 */
export function createPriceWorker(options: PriceWorkerOptions): PriceWorker {
  const { source, prices, publisher } = options;
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
  const wanted = new Set(symbols);

  // Ticks run one after another on this chain, whoever asks for them (the loop or a caller).
  let chain: Promise<unknown> = Promise.resolve();
  let inFlight: AbortController | undefined;
  let consecutiveFailures = 0;
  let lastTickStartedAt = Number.NEGATIVE_INFINITY;
  // Bumped by start() and stop(): a loop callback from an older generation does nothing.
  let generation = 0;
  let looping = false;
  let timer: NodeJS.Timeout | undefined;

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
        try {
          const event = await prices.setPrice(quote.symbol, quote.price, quote.publishTime ?? tickTime);
          // The same timestamp as the stored snapshot, so a client can match the two.
          published.push(await publisher.publishPriceUpdate(event.symbol, event.price, event.timestamp));
        } catch (err) {
          // A quote the event schema refuses is this quote's problem, not the broker's.
          if (!(err instanceof EventValidationError)) throw err;
          logger.warn(
            { symbol: quote.symbol, price: quote.price, err: err.message },
            'price quote rejected, not published',
          );
        }
      }
      if (consecutiveFailures > 0) logger.info({ failedTicks: consecutiveFailures }, 'price ticks recovered');
      consecutiveFailures = 0;
      logger.debug({ prices: published.map((e) => `${e.symbol}=${e.price}`) }, 'price tick');
      return { ok: true, published };
    } catch (err) {
      consecutiveFailures += 1;
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

  function schedule(delayMs: number, loopGeneration: number): void {
    timer = setTimeout(() => {
      timer = undefined;
      void tick().then((result) => {
        if (loopGeneration !== generation) return;
        schedule(nextDelayMs(result), loopGeneration);
      });
    }, delayMs);
  }

  function nextDelayMs(result: TickResult): number {
    if (result.ok) return Math.max(0, lastTickStartedAt + intervalMs - Date.now());
    return backoffDelayMs(consecutiveFailures, { intervalMs, maxBackoffMs, retryAfterMs: result.error?.retryAfterMs });
  }

  return {
    start() {
      if (looping) return;
      looping = true;
      generation += 1;
      // A tick that just ran (e.g. the launcher's first one) counts as this interval's tick.
      schedule(Math.max(0, lastTickStartedAt + intervalMs - Date.now()), generation);
    },
    async stop() {
      looping = false;
      generation += 1;
      if (timer) clearTimeout(timer);
      timer = undefined;
      inFlight?.abort();
      await chain;
    },
    tick,
  };
}

/**
 * Delay before the next tick after `failures` consecutive failed ticks: doubling from
 * `intervalMs` up to `maxBackoffMs`, with jitter in the upper half so many workers do not
 * retry in lockstep, and never sooner than the source's Retry-After.
 */
export function backoffDelayMs(
  failures: number,
  options: { intervalMs: number; maxBackoffMs: number; retryAfterMs?: number | undefined; random?: () => number },
): number {
  const random = options.random ?? Math.random;
  const ceiling = Math.min(options.maxBackoffMs, options.intervalMs * 2 ** Math.min(Math.max(failures - 1, 0), 30));
  const jittered = Math.max(options.intervalMs, Math.round(ceiling / 2 + (random() * ceiling) / 2));
  return Math.max(jittered, options.retryAfterMs ?? 0);
}

function describeError(err: unknown): { code: string; message: string; retryAfterMs?: number } {
  const e = err as { code?: unknown; message?: unknown; retryAfterMs?: unknown } | null;
  const code = typeof e?.code === 'string' ? e.code : 'tick_failed';
  const message = typeof e?.message === 'string' ? e.message : String(err);
  return typeof e?.retryAfterMs === 'number' ? { code, message, retryAfterMs: e.retryAfterMs } : { code, message };
}
