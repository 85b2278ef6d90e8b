import Big from 'big.js';
import type { Logger } from '@repo/log';
import type { QueryParams } from './hermes-client.ts';
import { PriceSourceError, type PriceQuote } from './price-source.ts';
import { scaleInteger } from './scaled-integer.ts';

/** Pyth's SOL/USD price feed, the one feed known without configuration or lookup. */
export const SOL_USD_FEED_ID = '0xef0d8b6fda2ceba41da15d4095d1da392a0d2f8ed0c6c7bc0f4cfac8c280b56d';
export const DEFAULT_FEED_IDS: Readonly<Record<string, string>> = Object.freeze({ SOL: SOL_USD_FEED_ID });
export const DEFAULT_MAX_CONF_RATIO = '0.01';

const FEED_ID = /^(?:0x)?[0-9a-fA-F]{64}$/;
const RATIO = /^(?:0|[1-9]\d{0,8})(?:\.\d{1,18})?$/;
/** A feed whose confidence stays too wide is reported this often, not at every update. */
const LOW_CONFIDENCE_LOG_INTERVAL_MS = 60_000;
/** The last second a JavaScript Date can hold (±8.64e15 ms): a later time cannot be an ISO string. */
const MAX_UNIX_TIME_S = 8_640_000_000_000;

type SkipReason = 'feed_not_configured' | 'feed_missing' | 'stale' | 'future' | 'invalid_price';

/** Feed id (normalised) → the symbols priced from it, in the order asked. */
export type FeedPlan = Map<string, string[]>;

export interface PythFeedsOptions {
  /** Symbol → feed id (64 hex digits, 0x optional). */
  feedIds: Record<string, string>;
  maxStalenessMs: number;
  /** How far ahead of this host's clock a `publish_time` may be (clock skew) before it is refused. */
  maxFutureMs: number;
  /** Largest accepted `conf / price`, a decimal string. */
  maxConfRatio: string;
  now: () => number;
  logger: Logger;
}

export interface PythFeedStats {
  /** Updates not published because `conf / price` exceeded the limit, per symbol. */
  lowConfidence: Record<string, number>;
  /** Symbols dropped for good: not entitled (403) or unknown to Hermes (404). */
  dropped: Record<string, 'not_entitled' | 'unknown'>;
}

/**
 * The Pyth feeds the worker prices, shared by polling and streaming so that both apply the same
 * rules: which feeds are asked for (a feed the key is not entitled to is dropped once for both),
 * how a `parsed` entry becomes a quote (exact `price × 10^expo`, staleness, confidence), and what
 * gets logged (a problem once when it starts, low confidence at most once a minute per feed).
 */
export class PythFeeds {
  readonly #feedOf = new Map<string, string>();
  readonly #dropped = new Map<string, 'not_entitled' | 'unknown'>();
  readonly #maxStalenessMs: number;
  readonly #maxFutureMs: number;
  readonly #maxConfRatio: Big;
  readonly #now: () => number;
  readonly #logger: Logger;
  // Last problem per symbol: a feed that stays stale is warned about once, not every second.
  readonly #problems = new Map<string, SkipReason>();
  readonly #lowConfidence = new Map<string, number>();
  readonly #lowConfidenceLoggedAt = new Map<string, { at: number; since: number }>();

  constructor(options: PythFeedsOptions) {
    for (const [symbol, id] of Object.entries(options.feedIds)) this.set(symbol, id);
    if (typeof options.maxConfRatio !== 'string' || !RATIO.test(options.maxConfRatio)) {
      const got = JSON.stringify(options.maxConfRatio);
      throw new RangeError(`pyth source: maxConfRatio must be a decimal string such as "0.01", got ${got}`);
    }
    this.#maxConfRatio = new Big(options.maxConfRatio);
    if (this.#maxConfRatio.lte(0)) throw new RangeError('pyth source: maxConfRatio must be greater than 0');
    this.#maxStalenessMs = options.maxStalenessMs;
    this.#maxFutureMs = options.maxFutureMs;
    this.#now = options.now;
    this.#logger = options.logger;
  }

  /** Sets (or replaces) the feed of `symbol`. */
  set(symbol: string, id: string): void {
    if (typeof id !== 'string' || !FEED_ID.test(id)) {
      throw new RangeError(`pyth source: feed id of ${symbol} must be 64 hex digits, got ${JSON.stringify(id)}`);
    }
    this.#feedOf.set(symbol, normaliseFeedId(id));
  }

  has(symbol: string): boolean {
    return this.#feedOf.has(symbol);
  }

  /** The feed id of `symbol` as `0x…`, if it has one. */
  idOf(symbol: string): string | undefined {
    const id = this.#feedOf.get(symbol);
    return id === undefined ? undefined : `0x${id}`;
  }

  /** The feeds to ask for `symbols`: unconfigured symbols are reported and left out, dropped feeds too. */
  plan(symbols: readonly string[]): FeedPlan {
    const plan: FeedPlan = new Map();
    for (const symbol of symbols) {
      const id = this.#feedOf.get(symbol);
      if (id === undefined) {
        this.#skip(symbol, 'feed_not_configured', {});
        continue;
      }
      if (this.#dropped.has(id)) continue;
      const list = plan.get(id);
      if (list) list.push(symbol);
      else plan.set(id, [symbol]);
    }
    return plan;
  }

  /**
   * Stops asking for `ids` (the key is not entitled to them, or Hermes does not know them),
   * with one warning each. Answers how many of them were being asked for until now.
   */
  drop(ids: readonly string[], reason: 'not_entitled' | 'unknown'): number {
    let dropped = 0;
    for (const id of new Set(ids.map(normaliseFeedId))) {
      if (this.#dropped.has(id)) continue;
      const symbols = [...this.#feedOf].filter(([, feed]) => feed === id).map(([symbol]) => symbol);
      if (symbols.length === 0) continue;
      this.#dropped.set(id, reason);
      dropped++;
      this.#logger.warn(
        { symbols, feedId: `0x${id}`, reason },
        reason === 'not_entitled'
          ? 'Pyth: the API key is not entitled to this feed; it is dropped and the other symbols go on'
          : 'Pyth: Hermes does not know this feed id; it is dropped and the other symbols go on',
      );
    }
    return dropped;
  }

  /**
   * Drops the feeds a `source_not_entitled` (403) or `source_unknown_feeds` (404) error names.
   * True when one of them was being asked for: the request is worth repeating without it.
   */
  dropRefused(err: unknown): boolean {
    if (!(err instanceof PriceSourceError)) return false;
    if (err.code === 'source_not_entitled') return this.drop(err.feedIds, 'not_entitled') > 0;
    if (err.code === 'source_unknown_feeds') return this.drop(err.feedIds, 'unknown') > 0;
    return false;
  }

  /** The quotes in a `parsed` array (latest answer or stream event) for the feeds of `plan`. */
  quotes(parsed: readonly unknown[], plan: FeedPlan): { quotes: PriceQuote[]; seen: Set<string> } {
    const quotes: PriceQuote[] = [];
    const seen = new Set<string>();
    const nowMs = this.#now();
    for (const entry of parsed) {
      const rawId = (entry as { id?: unknown } | null)?.id;
      const id = typeof rawId === 'string' ? normaliseFeedId(rawId) : undefined;
      const wanted = id === undefined ? undefined : plan.get(id);
      if (id === undefined || wanted === undefined || seen.has(id)) continue;
      seen.add(id);
      const reading = readPrice((entry as { price?: unknown }).price, this.#maxConfRatio);
      for (const symbol of wanted) {
        if (!reading.ok) {
          this.#skip(symbol, 'invalid_price', { feedId: id, detail: reading.detail });
        } else if (nowMs - reading.publishTimeMs > this.#maxStalenessMs) {
          this.#skip(symbol, 'stale', {
            feedId: id,
            publishTime: new Date(reading.publishTimeMs).toISOString(),
            maxStalenessMs: this.#maxStalenessMs,
          });
        } else if (reading.publishTimeMs - nowMs > this.#maxFutureMs) {
          // Published "later" than now: taken, it would outrank every real update after it
          // (publish order) and pass the API's staleness check until the clock caught up,
          // freezing the price that orders fill at.
          this.#skip(symbol, 'future', {
            feedId: id,
            publishTime: new Date(reading.publishTimeMs).toISOString(),
            maxFutureMs: this.#maxFutureMs,
          });
        } else if (reading.lowConfidence) {
          this.#countLowConfidence(symbol, reading, nowMs);
        } else {
          this.#priced(symbol);
          quotes.push({ symbol, price: reading.price, publishTime: new Date(reading.publishTimeMs).toISOString() });
        }
      }
    }
    return { quotes, seen };
  }

  /** Reports the feeds of `plan` a complete answer (a poll) did not contain. */
  reportMissing(plan: FeedPlan, seen: Set<string>): void {
    for (const [id, symbols] of plan) {
      if (!seen.has(id)) for (const symbol of symbols) this.#skip(symbol, 'feed_missing', { feedId: id });
    }
  }

  stats(): PythFeedStats {
    const dropped: PythFeedStats['dropped'] = {};
    for (const [symbol, id] of this.#feedOf) {
      const reason = this.#dropped.get(id);
      if (reason) dropped[symbol] = reason;
    }
    return { lowConfidence: Object.fromEntries(this.#lowConfidence), dropped };
  }

  #countLowConfidence(symbol: string, reading: PriceOk, nowMs: number): void {
    this.#lowConfidence.set(symbol, (this.#lowConfidence.get(symbol) ?? 0) + 1);
    const logged = this.#lowConfidenceLoggedAt.get(symbol);
    if (logged && nowMs - logged.at < LOW_CONFIDENCE_LOG_INTERVAL_MS) return;
    const total = this.#lowConfidence.get(symbol)!;
    this.#lowConfidenceLoggedAt.set(symbol, { at: nowMs, since: total });
    this.#logger.warn(
      {
        symbol,
        price: reading.price,
        conf: reading.conf,
        maxConfRatio: this.#maxConfRatio.toString(),
        skippedSinceLastReport: total - (logged?.since ?? 0),
      },
      'Pyth price too uncertain (conf / price above PYTH_MAX_CONF_RATIO), not published',
    );
  }

  #skip(symbol: string, reason: SkipReason, detail: Record<string, unknown>): void {
    const repeated = this.#problems.get(symbol) === reason;
    this.#problems.set(symbol, reason);
    const line = { symbol, reason, ...detail };
    if (repeated) this.#logger.debug(line, 'pyth price skipped, last price kept');
    else this.#logger.warn(line, 'pyth price skipped, last price kept');
  }

  #priced(symbol: string): void {
    const previous = this.#problems.get(symbol);
    if (previous === undefined) return;
    this.#problems.delete(symbol);
    this.#logger.info({ symbol, previous }, 'pyth price available again');
  }
}

interface PriceOk {
  ok: true;
  price: string;
  conf: string;
  publishTimeMs: number;
  lowConfidence: boolean;
}
type PriceReading = PriceOk | { ok: false; detail: string };

/**
 * Decodes Hermes' `{price, conf, expo, publish_time}`; only a positive price is usable. `price`
 * and `conf` share the exponent, so `conf / price > ratio` is decided on the integers, exactly.
 */
function readPrice(raw: unknown, maxConfRatio: Big): PriceReading {
  if (!raw || typeof raw !== 'object') return { ok: false, detail: 'no price object' };
  const { price, conf, expo, publish_time: publishTime } = raw as Record<string, unknown>;
  if (typeof price !== 'string') return { ok: false, detail: 'price is not a string' };
  if (typeof conf !== 'string' || !/^\d{1,40}$/.test(conf)) {
    return { ok: false, detail: 'conf is not a non-negative integer string' };
  }
  if (typeof expo !== 'number') return { ok: false, detail: 'expo is not a number' };
  if (
    typeof publishTime !== 'number' ||
    !Number.isSafeInteger(publishTime) ||
    publishTime <= 0 ||
    publishTime > MAX_UNIX_TIME_S
  ) {
    return { ok: false, detail: 'publish_time is not a unix time' };
  }
  let value: string;
  let confValue: string;
  try {
    value = scaleInteger(price, expo);
    confValue = scaleInteger(conf, expo);
  } catch (err) {
    return { ok: false, detail: (err as Error).message };
  }
  if (value === '0' || value.startsWith('-')) return { ok: false, detail: `price is not positive: ${value}` };
  const lowConfidence = new Big(conf).gt(new Big(price).times(maxConfRatio));
  return { ok: true, price: value, conf: confValue, publishTimeMs: publishTime * 1000, lowConfidence };
}

/** The query of `/v2/updates/price/latest` and `/stream` for the feeds of `plan`. */
export function priceUpdateQuery(plan: FeedPlan): QueryParams {
  return [
    ...[...plan.keys()].map((id) => ['ids[]', `0x${id}`] as const),
    ['parsed', 'true'],
    // Without it one unknown id turns the whole request into a 404.
    ['ignore_invalid_price_ids', 'true'],
  ];
}

function normaliseFeedId(id: string): string {
  return id.toLowerCase().replace(/^0x/, '');
}
