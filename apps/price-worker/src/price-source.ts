/** One price read from a source: `price` is a canonical positive decimal string ("231.45"). */
export interface PriceQuote {
  symbol: string;
  price: string;
  /** When the source says the price was observed (ISO 8601); the worker uses it as the event time. */
  publishTime?: string;
}

export interface ReadOptions {
  /** Aborts an in-flight read, e.g. when the worker stops. */
  signal?: AbortSignal;
}

/**
 * Where prices come from. `read` answers the symbols it has a fresh price for; a symbol it
 * cannot price now (stale, missing) is left out, so the worker keeps the last price. A
 * failure of the whole read (network, auth, rate limit, bad response) rejects with a
 * `PriceSourceError`.
 */
export interface PriceSource {
  read(symbols: string[], options?: ReadOptions): Promise<PriceQuote[]>;
  close?(): Promise<void> | void;
}

export type PriceSourceErrorCode =
  /** The source answered 401/403: the API key is missing or wrong. */
  | 'source_unauthorized'
  /** The source answered 429; `retryAfterMs` says when to ask again. */
  | 'source_rate_limited'
  /** Any other non-2xx status; `status` holds it. */
  | 'source_http_error'
  /** No complete answer within the timeout. */
  | 'source_timeout'
  /** Connection refused, DNS failure, reset. */
  | 'source_unreachable'
  /** The body was not JSON, not the expected shape, or over the size limit. */
  | 'source_bad_response'
  /** The read was aborted by its caller or the source was closed. */
  | 'source_aborted';

/** A whole read failed. Nothing was priced; the caller keeps its last prices and retries later. */
export class PriceSourceError extends Error {
  readonly code: PriceSourceErrorCode;
  readonly status: number | undefined;
  readonly retryAfterMs: number | undefined;

  constructor(
    code: PriceSourceErrorCode,
    message: string,
    options: { status?: number; retryAfterMs?: number; cause?: unknown } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'PriceSourceError';
    this.code = code;
    this.status = options.status;
    this.retryAfterMs = options.retryAfterMs;
  }
}
