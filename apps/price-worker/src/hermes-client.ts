import { silentLogger, type Logger } from '@repo/log';
import { PriceSourceError } from './price-source.ts';

export const DEFAULT_HERMES_URL = 'https://hermes.pyth.network';

export interface HermesClientOptions {
  /** Base URL; a path prefix is kept (`https://pyth.dourolabs.app/hermes`). Default `https://hermes.pyth.network`. */
  url?: string;
  /** Sent as `Authorization: Bearer <apiKey>` (required by Hermes since August 2026). Never logged. */
  apiKey?: string;
  /** Deadline of a JSON request (body included), and of a stream's response headers. Default 5000. */
  timeoutMs?: number;
  /** Larger JSON bodies are refused as `source_bad_response`. Default 1 MiB (one feed is ~1 KiB). */
  maxResponseBytes?: number;
  /** Default `globalThis.fetch`. */
  fetch?: typeof fetch;
  /** Clock in epoch ms, for rate-limit windows. Default `Date.now`. */
  now?: () => number;
  logger?: Logger;
}

/** Query parameters in order; a name may repeat (`ids[]`). */
export type QueryParams = readonly (readonly [string, string])[];

/**
 * The HTTP side of Hermes, shared by polling, streaming and feed-id lookups so that they share
 * one rate-limit window and one way of reporting errors. Every failure rejects with a
 * `PriceSourceError`; every non-2xx answer is logged with its body, truncated, key removed.
 */
export interface HermesClient {
  /** GET `path` (relative to the base URL) and parse the JSON answer. */
  getJson(path: string, query: QueryParams, signal?: AbortSignal): Promise<unknown>;
  /**
   * GET `path` as an event stream. Resolves with the 2xx response as soon as its headers have
   * arrived (the timeout covers only that); the caller reads and cancels the body.
   */
  openStream(path: string, query: QueryParams, signal?: AbortSignal): Promise<Response>;
  /** Milliseconds until Hermes may be asked again after a 429; 0 when not rate-limited. */
  rateLimitedForMs(): number;
  /** Aborts every request in flight and refuses new ones with `source_aborted`. */
  close(): void;
}

/** Wait used after a 429 without a usable Retry-After: Hermes blocks a client for 60 s. */
const DEFAULT_RATE_LIMIT_MS = 60_000;
/** Upper bound on an honoured Retry-After, so a broken header cannot park the worker for days. */
const MAX_RETRY_AFTER_MS = 10 * 60_000;
/** How much of an error body is read, and how much of it is logged. */
const ERROR_BODY_READ_BYTES = 4096;
const ERROR_BODY_LOG_CHARS = 300;
const FEED_ID_IN_TEXT = /(?:0x)?([0-9a-fA-F]{64})/g;

export function createHermesClient(options: HermesClientOptions = {}): HermesClient {
  const baseUrl = parseBaseUrl(options.url ?? DEFAULT_HERMES_URL);
  const apiKey = options.apiKey ? options.apiKey : undefined;
  const timeoutMs = positiveOption('timeoutMs', options.timeoutMs, 5000);
  const maxResponseBytes = positiveOption('maxResponseBytes', options.maxResponseBytes, 1024 * 1024);
  const fetchImpl = options.fetch ?? globalThis.fetch;
  const now = options.now ?? Date.now;
  const logger = options.logger ?? silentLogger;
  const closing = new AbortController();
  let rateLimitedUntil = 0;

  /** The request URL, and the same without its query: what logs and errors show. */
  function target(path: string, query: QueryParams): { url: URL; where: string } {
    const url = new URL(path, baseUrl);
    for (const [name, value] of query) url.searchParams.append(name, value);
    return { url, where: `${url.origin}${url.pathname}` };
  }

  /** Sends the request; resolves with a 2xx response whose body the caller owns. */
  async function send(
    { url, where }: { url: URL; where: string },
    accept: string,
    signal: AbortSignal | undefined,
    deadline: AbortSignal,
  ): Promise<Response> {
    if (closing.signal.aborted) throw new PriceSourceError('source_aborted', 'Hermes client is closed');
    const waitMs = rateLimitedUntil - now();
    if (waitMs > 0) {
      throw new PriceSourceError('source_rate_limited', `Hermes rate limit: not asking again for ${waitMs} ms`, {
        status: 429,
        retryAfterMs: waitMs,
      });
    }
    const headers: Record<string, string> = { accept };
    if (apiKey) headers.authorization = `Bearer ${apiKey}`;
    const signals = [deadline, closing.signal, ...(signal ? [signal] : [])];
    let response: Response;
    try {
      response = await fetchImpl(url, { headers, signal: AbortSignal.any(signals), redirect: 'follow' });
    } catch (err) {
      throw abortOr(err, deadline, signal, where, () => `Hermes at ${where} is unreachable: ${describe(err)}`);
    }
    if (!response.ok) throw await statusError(response, where);
    return response;
  }

  function abortOr(
    err: unknown,
    deadline: AbortSignal,
    signal: AbortSignal | undefined,
    where: string,
    unreachable: () => string,
  ): PriceSourceError {
    if (err instanceof PriceSourceError) return err;
    if (closing.signal.aborted || signal?.aborted) {
      return new PriceSourceError('source_aborted', 'Hermes request aborted', { cause: err });
    }
    if (deadline.aborted) {
      return new PriceSourceError('source_timeout', `Hermes at ${where} did not answer within ${timeoutMs} ms`, {
        cause: err,
      });
    }
    return new PriceSourceError('source_unreachable', unreachable(), { cause: err });
  }

  async function statusError(response: Response, where: string): Promise<PriceSourceError> {
    const status = response.status;
    const body = redact(await readErrorBody(response), apiKey);
    logger.warn({ status, url: where, body: truncate(body, ERROR_BODY_LOG_CHARS) }, 'Hermes answered an error');
    const feedIds = [...body.matchAll(FEED_ID_IN_TEXT)].map((m) => m[1]!.toLowerCase());
    // Feeds are dropped only when the answer says why: a 403 that merely echoes the request
    // (and its ids) is a refused key, not a verdict on every feed.
    if (status === 403 && feedIds.length > 0 && /entitle/i.test(body)) {
      return new PriceSourceError('source_not_entitled', `Hermes at ${where} answered 403: not entitled to a feed`, {
        status,
        feedIds,
      });
    }
    if (status === 401 || status === 403) {
      const hint = apiKey ? 'the API key was refused' : 'an API key is required (PYTH_API_KEY)';
      return new PriceSourceError('source_unauthorized', `Hermes at ${where} answered ${status}: ${hint}`, { status });
    }
    if (status === 404 && feedIds.length > 0 && /not found/i.test(body)) {
      return new PriceSourceError('source_unknown_feeds', `Hermes at ${where} answered 404: unknown price feed ids`, {
        status,
        feedIds,
      });
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
    async getJson(path, query, signal) {
      const deadline = AbortSignal.timeout(timeoutMs);
      const request = target(path, query);
      const { where } = request;
      const response = await send(request, 'application/json', signal, deadline);
      let text: string;
      try {
        text = await readBody(response, maxResponseBytes);
      } catch (err) {
        throw abortOr(
          err,
          deadline,
          signal,
          where,
          () => `Hermes at ${where} broke off the response: ${describe(err)}`,
        );
      }
      try {
        return JSON.parse(text) as unknown;
      } catch (err) {
        throw new PriceSourceError('source_bad_response', `Hermes at ${where} answered malformed JSON`, { cause: err });
      }
    },

    async openStream(path, query, signal) {
      // The deadline must stop at the headers: the body of a stream is meant to last for hours.
      const headersArrived = new AbortController();
      const timer = setTimeout(() => headersArrived.abort(), timeoutMs);
      try {
        return await send(target(path, query), 'text/event-stream', signal, headersArrived.signal);
      } finally {
        clearTimeout(timer);
      }
    },

    rateLimitedForMs() {
      return Math.max(0, rateLimitedUntil - now());
    },

    close() {
      closing.abort();
    },
  };
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

/** The key, as sent and URL-encoded, replaced wherever an answer echoes it. */
export function redact(text: string, apiKey: string | undefined): string {
  if (!apiKey) return text;
  let out = text.split(apiKey).join('[redacted]');
  const encoded = encodeURIComponent(apiKey);
  if (encoded !== apiKey) out = out.split(encoded).join('[redacted]');
  return out;
}

function truncate(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max)}… (${text.length} chars)`;
}

/** The start of an error body; never throws, never waits for more than the first few KiB. */
async function readErrorBody(response: Response): Promise<string> {
  if (!response.body) return '';
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  try {
    while (total < ERROR_BODY_READ_BYTES) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
      total += value.byteLength;
    }
  } catch {
    // A body that breaks off is still worth logging as far as it came.
  } finally {
    await reader.cancel().catch(() => {});
  }
  return new TextDecoder().decode(Buffer.concat(chunks).subarray(0, ERROR_BODY_READ_BYTES));
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

export function positiveOption(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isFinite(value) || value <= 0) {
    throw new RangeError(`pyth source: ${name} must be a positive number, got ${String(value)}`);
  }
  return value;
}

function describe(err: unknown): string {
  const cause = (err as { cause?: { code?: string; message?: string } })?.cause;
  return cause?.code ?? cause?.message ?? (err as Error)?.message ?? String(err);
}
