import { setTimeout as sleep } from 'node:timers/promises';
import { silentLogger, type Logger } from '@repo/log';
import { backoffDelay } from '@repo/retry';
import { lookupCryptoUsdFeed } from './feed-lookup.ts';
import { createHermesClient, positiveOption, type HermesClient } from './hermes-client.ts';
import {
  PriceSourceError,
  type PriceQuote,
  type PriceSource,
  type PriceStream,
  type ReadOptions,
} from './price-source.ts';
import {
  DEFAULT_FEED_IDS,
  DEFAULT_MAX_CONF_RATIO,
  PythFeeds,
  priceUpdateQuery,
  type FeedPlan,
  type PythFeedStats,
} from './pyth-feeds.ts';
import { createPythStream, type PythStreamOptions, type PythStreamStats } from './pyth-stream.ts';

export interface PythSourceOptions {
  /** Hermes base URL; a path prefix is kept (`https://provider.example/hermes`). Default `https://hermes.pyth.network`. */
  url?: string;
  /** Sent as `Authorization: Bearer <apiKey>` (required by Hermes since August 2026). */
  apiKey?: string;
  /**
   * Symbol → Pyth feed id (64 hex digits, 0x optional), on top of the built-in `{ SOL: <SOL/USD> }`.
   * Symbols without one are looked up by `resolveFeeds`.
   */
  feedIds?: Record<string, string>;
  /** A price published longer ago than this is skipped and the last price kept. Default 60000. */
  maxStalenessMs?: number;
  /**
   * A price whose publish time is further ahead of this host's clock than this is skipped, as a
   * bad update (or a clock badly behind) rather than a fresh one. Default 10000.
   */
  maxFutureMs?: number;
  /** An update whose `conf / price` exceeds this decimal is skipped (and counted). Default "0.01". */
  maxConfRatio?: string;
  /** Whole-request deadline, body included (for the stream: until its headers). Default 5000. */
  timeoutMs?: number;
  /** Larger bodies are refused as `source_bad_response`. Default 1 MiB (one feed is ~1 KiB). */
  maxResponseBytes?: number;
  /** The SSE transport's timings (renewal, idle watchdog, reconnect backoff). */
  stream?: PythStreamOptions;
  /** Default `globalThis.fetch`. */
  fetch?: typeof fetch;
  /** Clock in epoch ms, for staleness, log throttling and rate-limit windows. Default `Date.now`. */
  now?: () => number;
  logger?: Logger;
}

export interface PythSourceStats extends PythFeedStats {
  stream: PythStreamStats;
}

/**
 * Pyth through Hermes: `read` polls `/v2/updates/price/latest`; `stream` is the SSE transport
 * over the same feeds, client and rules. Both send `ignore_invalid_price_ids=true`, drop a feed
 * that Hermes refuses with 403 (not entitled) or names in a 404 and go on with the others, and
 * skip updates that are stale or whose confidence interval is too wide.
 */
export interface PythSource extends PriceSource {
  readonly stream: PriceStream;
  /**
   * Makes sure every symbol has a feed: configured, built in (SOL), or looked up once as
   * `Crypto.<SYMBOL>/USD` and kept for the life of the source. Rejects naming every symbol
   * Hermes has no such feed for; transient failures are retried a few times first.
   */
  resolveFeeds(symbols: readonly string[], options?: ResolveOptions): Promise<Record<string, string>>;
  stats(): PythSourceStats;
  close(): void;
}

export interface ResolveOptions {
  /** Tries per symbol for a transient failure (timeout, unreachable, 5xx, 429). Default 4. */
  attempts?: number;
  signal?: AbortSignal;
}

/** A symbol that Hermes has no `Crypto.<SYMBOL>/USD` feed for. */
export class UnknownSymbolError extends Error {
  readonly code = 'unknown_symbol';
  readonly symbols: readonly string[];
  constructor(symbols: readonly string[], detail: string) {
    super(
      `no Pyth price feed for ${symbols.join(', ')}: ${detail}. ` +
        'Set PYTH_FEED_IDS (SYMBOL=0x<feed id>) or remove the symbol from SYMBOLS',
    );
    this.name = 'UnknownSymbolError';
    this.symbols = symbols;
  }
}

const LATEST_PATH = 'v2/updates/price/latest';

export function createPythSource(options: PythSourceOptions = {}): PythSource {
  const logger = options.logger ?? silentLogger;
  const now = options.now ?? Date.now;
  const client: HermesClient = createHermesClient({
    ...(options.url !== undefined ? { url: options.url } : {}),
    ...(options.apiKey ? { apiKey: options.apiKey } : {}),
    ...(options.timeoutMs !== undefined ? { timeoutMs: options.timeoutMs } : {}),
    ...(options.maxResponseBytes !== undefined ? { maxResponseBytes: options.maxResponseBytes } : {}),
    ...(options.fetch ? { fetch: options.fetch } : {}),
    now,
    logger,
  });
  const feeds = new PythFeeds({
    feedIds: { ...DEFAULT_FEED_IDS, ...options.feedIds },
    maxStalenessMs: positiveOption('maxStalenessMs', options.maxStalenessMs, 60_000),
    maxFutureMs: positiveOption('maxFutureMs', options.maxFutureMs, 10_000),
    maxConfRatio: options.maxConfRatio ?? DEFAULT_MAX_CONF_RATIO,
    now,
    logger,
  });
  const stream = createPythStream(client, feeds, logger, options.stream);
  const closing = new AbortController();

  async function latest(plan: FeedPlan, signal: AbortSignal | undefined): Promise<unknown[]> {
    const body = await client.getJson(LATEST_PATH, priceUpdateQuery(plan), signal);
    const parsed = (body as { parsed?: unknown } | null)?.parsed;
    if (!Array.isArray(parsed))
      throw new PriceSourceError('source_bad_response', 'Hermes answer has no "parsed" array');
    return parsed as unknown[];
  }

  async function resolveOne(symbol: string, attempts: number, signal: AbortSignal | undefined) {
    for (let attempt = 0; ; attempt++) {
      try {
        return await lookupCryptoUsdFeed(client, symbol, signal);
      } catch (err) {
        const code = (err as PriceSourceError).code;
        const transient = ['source_timeout', 'source_unreachable', 'source_http_error', 'source_rate_limited'];
        if (attempt + 1 >= attempts || !transient.includes(code)) {
          throw new Error(
            `could not look up the Pyth feed of ${symbol} on Hermes: ${(err as Error).message}. ` +
              'Set PYTH_FEED_IDS (SYMBOL=0x<feed id>) to start without the lookup',
            { cause: err },
          );
        }
        const delayMs = Math.max(
          backoffDelay(attempt, { baseDelayMs: 500, maxDelayMs: 5000 }),
          client.rateLimitedForMs(),
        );
        logger.warn({ symbol, code, attempt: attempt + 1, retryInMs: delayMs }, 'Pyth feed lookup failed; retrying');
        await sleep(delayMs, undefined, signal ? { signal } : {});
      }
    }
  }

  return {
    stream,

    async read(symbols: string[], readOptions: ReadOptions = {}): Promise<PriceQuote[]> {
      if (closing.signal.aborted) throw new PriceSourceError('source_aborted', 'pyth source is closed');
      for (;;) {
        const plan = feeds.plan(symbols);
        if (plan.size === 0) return [];
        let parsed: unknown[];
        try {
          parsed = await latest(plan, readOptions.signal);
        } catch (err) {
          // Each retry drops at least one feed, so this ends.
          if (feeds.dropRefused(err)) continue;
          throw err;
        }
        const { quotes, seen } = feeds.quotes(parsed, plan);
        feeds.reportMissing(plan, seen);
        return quotes;
      }
    },

    async resolveFeeds(symbols, resolveOptions = {}) {
      const attempts = Math.max(1, Math.floor(resolveOptions.attempts ?? 4));
      const unknown: string[] = [];
      const details: string[] = [];
      for (const symbol of symbols) {
        if (feeds.has(symbol)) continue;
        const found = await resolveOne(symbol, attempts, resolveOptions.signal);
        if (found.found) {
          feeds.set(symbol, found.id);
          logger.info({ symbol, feed: found.symbol, feedId: found.id }, 'Pyth feed resolved');
        } else {
          unknown.push(symbol);
          const near = found.candidates.length > 0 ? `; Hermes lists ${found.candidates.join(', ')}` : '';
          details.push(`Hermes lists no Crypto.${symbol}/USD${near}`);
        }
      }
      if (unknown.length > 0) throw new UnknownSymbolError(unknown, details.join('; '));
      return Object.fromEntries(symbols.map((symbol) => [symbol, feeds.idOf(symbol)!]));
    },

    stats() {
      return { ...feeds.stats(), stream: stream.stats() };
    },

    close() {
      closing.abort();
      client.close();
      void stream.close();
    },
  };
}
