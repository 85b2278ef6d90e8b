import { silentLogger, type Logger } from '@repo/log';
import { PriceSourceError, type PriceQuote, type PriceSource, type ReadOptions } from './price-source.ts';
import { scaleInteger } from './scaled-integer.ts';

export const DEFAULT_HERMES_URL = 'https://hermes.pyth.network';
/** Pyth's SOL/USD price feed. */
export const SOL_USD_FEED_ID = '0xef0d8b6fda2ceba41da15d4095d1da392a0d2f8ed0c6c7bc0f4cfac8c280b56d';
export const DEFAULT_FEED_IDS: Readonly<Record<string, string>> = Object.freeze({ SOL: SOL_USD_FEED_ID });

export interface PythSourceOptions {
  /** Hermes base URL; a path prefix is kept (`https://provider.example/hermes`). Default `https://hermes.pyth.network`. */
  url?: string;
  /** Sent as `Authorization: Bearer <apiKey>` (required by Hermes since August 2026). */
  apiKey?: string;
  /** Symbol → Pyth feed id (64 hex digits, 0x optional). Default `{ SOL: <SOL/USD feed> }`. */
  feedIds?: Record<string, string>;
  /** A price published longer ago than this is skipped and the last price kept. Default 60000. */
  maxStalenessMs?: number;
  /** Whole-request deadline, body included. Default 5000. */
  timeoutMs?: number;
  /** Larger bodies are refused as `source_bad_response`. Default 1 MiB (one feed is ~1 KiB). */
  maxResponseBytes?: number;
  /** Default `globalThis.fetch`. */
  fetch?: typeof fetch;
  /** Clock in epoch ms, for staleness and rate-limit windows. Default `Date.now`. */
  now?: () => number;
  logger?: Logger;
}

/** Wait used after a 429 without a usable Retry-After: Hermes blocks a client for 60 s. */
const DEFAULT_RATE_LIMIT_MS = 60_000;
/** Upper bound on an honoured Retry-After, so a broken header cannot park the worker for days. */
const MAX_RETRY_AFTER_MS = 10 * 60_000;
const FEED_ID = /^(?:0x)?[0-9a-fA-F]{64}$/;

type SkipReason = 'feed_not_configured' | 'feed_missing' | 'stale' | 'invalid_price';

/**
 * Polls Hermes' REST endpoint `GET /v2/updates/price/latest?ids[]=…&parsed=true` once per
 * read, for all asked symbols at once, and converts `price × 10^expo` exactly.
 *
 * A failed request rejects with a `PriceSourceError` (the worker retries on later ticks with
 * backoff). After a 429 the source refuses to ask again before Retry-After has passed, so a
 * rate-limited key is not made worse. A symbol whose feed is missing, stale or malformed is
 * left out of the answer with a log line: the worker then keeps the last price.
 */
export function createPythSource(options: PythSourceOptions = {}): PriceSource {
  const baseUrl = parseBaseUrl(options.url ?? DEFAULT_HERMES_URL);
  const apiKey = options.apiKey ? options.apiKey : undefined;
  const maxStalenessMs = positiveOption('maxStalenessMs', options.maxStalenessMs, 60_000);
  const timeoutMs = positiveOption('timeoutMs', options.timeoutMs, 5000);
  const maxResponseBytes = positiveOption('maxResponseBytes', options.maxResponseBytes, 1024 * 1024);
  const fetchImpl = options.fetch ?? globalThis.fetch;
  const now = options.now ?? Date.now;
  const logger = options.logger ?? silentLogger;

  // symbol → normalised feed id (lower-case hex without 0x, as Hermes answers).
  const feedOf = new Map<string, string>();
  for (const [symbol, id] of Object.entries(options.feedIds ?? DEFAULT_FEED_IDS)) {
    if (typeof id !== 'string' || !FEED_ID.test(id)) {
      throw new RangeError(`pyth source: feed id of ${symbol} must be 64 hex digits, got ${JSON.stringify(id)}`);
    }
    feedOf.set(symbol, normaliseFeedId(id));
  }

  const closing = new AbortController();
  let rateLimitedUntil = 0;
  // Last problem per symbol: a feed that stays stale is warned about once, not every second.
  const problems = new Map<string, SkipReason>();

  function skip(symbol: string, reason: SkipReason, detail: Record<string, unknown>): void {
    const repeated = problems.get(symbol) === reason;
    problems.set(symbol, reason);
    const line = { symbol, reason, ...detail };
    if (repeated) logger.debug(line, 'pyth price skipped, last price kept');
    else logger.warn(line, 'pyth price skipped, last price kept');
  }

  function priced(symbol: string): void {
    const previous = problems.get(symbol);
    if (previous === undefined) return;
    problems.delete(symbol);
    logger.info({ symbol, previous }, 'pyth price available again');
  }

  async function request(ids: string[], signal: AbortSignal | undefined): Promise<unknown> {
    const url = new URL('v2/updates/price/latest', baseUrl);
    for (const id of ids) url.searchParams.append('ids[]', `0x${id}`);
    url.searchParams.set('parsed', 'true');
    const headers: Record<string, string> = { accept: 'application/json' };
    if (apiKey) headers.authorization = `Bearer ${apiKey}`;

    const timeout = new AbortController();
    const timer = setTimeout(() => timeout.abort(), timeoutMs);
    const signals = [timeout.signal, closing.signal, ...(signal ? [signal] : [])];
    const where = `${url.origin}${url.pathname}`;
    try {
      let response: Response;
      try {
        response = await fetchImpl(url, { headers, signal: AbortSignal.any(signals), redirect: 'follow' });
      } catch (err) {
        throw abortOr(
          err,
          new PriceSourceError('source_unreachable', `Hermes at ${where} is unreachable: ${describe(err)}`, {
            cause: err,
          }),
        );
      }
      if (!response.ok) {
        await response.body?.cancel().catch(() => {});
        throw statusError(response, where);
      }
      let text: string;
      try {
        text = await readBody(response, maxResponseBytes);
      } catch (err) {
        if (err instanceof PriceSourceError) throw err;
        throw abortOr(
          err,
          new PriceSourceError('source_unreachable', `Hermes at ${where} broke off the response: ${describe(err)}`, {
            cause: err,
          }),
        );
      }
      try {
        return JSON.parse(text) as unknown;
      } catch (err) {
        throw new PriceSourceError('source_bad_response', `Hermes at ${where} answered malformed JSON`, { cause: err });
      }
    } finally {
      clearTimeout(timer);
    }

    function abortOr(err: unknown, otherwise: PriceSourceError): PriceSourceError {
      if (timeout.signal.aborted) {
        return new PriceSourceError('source_timeout', `Hermes at ${where} did not answer within ${timeoutMs} ms`, {
          cause: err,
        });
      }
      if (closing.signal.aborted || signal?.aborted) {
        return new PriceSourceError('source_aborted', 'pyth read aborted', { cause: err });
      }
      return otherwise;
    }
  }

  function statusError(response: Response, where: string): PriceSourceError {
    const status = response.status;
    if (status === 401 || status === 403) {
      const hint = apiKey ? 'the API key was refused' : 'an API key is required (PYTH_API_KEY)';
      return new PriceSourceError('source_unauthorized', `Hermes at ${where} answered ${status}: ${hint}`, { status });
    }
    if (status === 429) {
      const retryAfterMs = parseRetryAfter(response.headers.get('retry-after'), now()) ?? DEFAULT_RATE_LIMIT_MS;
      rateLimitedUntil = now() + retryAfterMs;
      return new PriceSourceError(
        'source_rate_limited',
        `Hermes at ${where} answered 429; retrying after ${retryAfterMs} ms`,
        {
          status,
          retryAfterMs,
        },
      );
    }
    return new PriceSourceError('source_http_error', `Hermes at ${where} answered ${status}`, { status });
  }

  return {
    async read(symbols: string[], readOptions: ReadOptions = {}): Promise<PriceQuote[]> {
      if (closing.signal.aborted) throw new PriceSourceError('source_aborted', 'pyth source is closed');
      const waitMs = rateLimitedUntil - now();
      if (waitMs > 0) {
        throw new PriceSourceError('source_rate_limited', `Hermes rate limit: not asking again for ${waitMs} ms`, {
          status: 429,
          retryAfterMs: waitMs,
        });
      }

      const symbolsOf = new Map<string, string[]>();
      for (const symbol of symbols) {
        const id = feedOf.get(symbol);
        if (id === undefined) {
          skip(symbol, 'feed_not_configured', {});
          continue;
        }
        const list = symbolsOf.get(id);
        if (list) list.push(symbol);
        else symbolsOf.set(id, [symbol]);
      }
      if (symbolsOf.size === 0) return [];

      const body = await request([...symbolsOf.keys()], readOptions.signal);
      const parsed = (body as { parsed?: unknown } | null)?.parsed;
      if (!Array.isArray(parsed)) {
        throw new PriceSourceError('source_bad_response', 'Hermes answer has no "parsed" array');
      }

      const quotes: PriceQuote[] = [];
      const seen = new Set<string>();
      const nowMs = now();
      for (const entry of parsed) {
        const id = typeof entry?.id === 'string' ? normaliseFeedId(entry.id) : undefined;
        const wanted = id === undefined ? undefined : symbolsOf.get(id);
        if (id === undefined || wanted === undefined || seen.has(id)) continue;
        seen.add(id);
        const reading = readPrice(entry.price);
        for (const symbol of wanted) {
          if (!reading.ok) {
            skip(symbol, 'invalid_price', { feedId: id, detail: reading.detail });
          } else if (nowMs - reading.publishTimeMs > maxStalenessMs) {
            skip(symbol, 'stale', {
              feedId: id,
              publishTime: new Date(reading.publishTimeMs).toISOString(),
              maxStalenessMs,
            });
          } else {
            priced(symbol);
            quotes.push({ symbol, price: reading.price, publishTime: new Date(reading.publishTimeMs).toISOString() });
          }
        }
      }
      for (const [id, wanted] of symbolsOf) {
        if (!seen.has(id)) for (const symbol of wanted) skip(symbol, 'feed_missing', { feedId: id });
      }
      return quotes;
    },

    close() {
      closing.abort();
    },
  };
}

type PriceReading = { ok: true; price: string; publishTimeMs: number } | { ok: false; detail: string };

/** Decodes Hermes' `{price, conf, expo, publish_time}`; only a positive price is usable. */
function readPrice(raw: unknown): PriceReading {
  if (!raw || typeof raw !== 'object') return { ok: false, detail: 'no price object' };
  const { price, expo, publish_time: publishTime } = raw as Record<string, unknown>;
  if (typeof price !== 'string') return { ok: false, detail: 'price is not a string' };
  if (typeof expo !== 'number') return { ok: false, detail: 'expo is not a number' };
  if (typeof publishTime !== 'number' || !Number.isSafeInteger(publishTime) || publishTime <= 0) {
    return { ok: false, detail: 'publish_time is not a unix time' };
  }
  let value: string;
  try {
    value = scaleInteger(price, expo);
  } catch (err) {
    return { ok: false, detail: (err as Error).message };
  }
  if (value === '0' || value.startsWith('-')) return { ok: false, detail: `price is not positive: ${value}` };
  return { ok: true, price: value, publishTimeMs: publishTime * 1000 };
}

/** Retry-After as delay-seconds or an HTTP date, capped; undefined when absent or unreadable. */
export function parseRetryAfter(header: string | null, nowMs: number): number | undefined {
  if (header === null) return undefined;
  const trimmed = header.trim();
  let ms: number;
  if (/^\d+$/.test(trimmed)) ms = Number(trimmed) * 1000;
  else {
    const at = Date.parse(trimmed);
    if (Number.isNaN(at)) return undefined;
    ms = at - nowMs;
  }
  return Math.min(MAX_RETRY_AFTER_MS, Math.max(0, ms));
}

/** Reads the body as text, refusing it once it exceeds `maxBytes`. */
async function readBody(response: Response, maxBytes: number): Promise<string> {
  const tooLarge = () => new PriceSourceError('source_bad_response', `Hermes answer is larger than ${maxBytes} bytes`);
  const declared = Number(response.headers.get('content-length'));
  if (Number.isFinite(declared) && declared > maxBytes) {
    await response.body?.cancel().catch(() => {});
    throw tooLarge();
  }
  if (!response.body) return '';
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > maxBytes) {
      await reader.cancel().catch(() => {});
      throw tooLarge();
    }
    chunks.push(value);
  }
  return new TextDecoder().decode(Buffer.concat(chunks));
}

function normaliseFeedId(id: string): string {
  return id.toLowerCase().replace(/^0x/, '');
}

function parseBaseUrl(raw: string): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new RangeError(`pyth source: url must be an http(s) URL, got ${JSON.stringify(raw)}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new RangeError(`pyth source: url must be an http(s) URL, got ${JSON.stringify(raw)}`);
  }
  // A trailing slash makes relative resolution keep a path prefix such as /hermes.
  if (!url.pathname.endsWith('/')) url.pathname += '/';
  url.search = '';
  url.hash = '';
  return url;
}

function positiveOption(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isFinite(value) || value <= 0)
    throw new RangeError(`pyth source: ${name} must be a positive number, got ${String(value)}`);
  return value;
}

function describe(err: unknown): string {
  const cause = (err as { cause?: { code?: string; message?: string } })?.cause;
  return cause?.code ?? cause?.message ?? (err as Error)?.message ?? String(err);
}
