/** One price read from a source: `price` is a canonical positive decimal string ("231.45"). */
export interface PriceQuote {
  symbol: string;
  price: string;
  /**
   * When the source says the price was observed (ISO 8601); the worker uses it as the event
   * time and never publishes a quote older than the last one it published for the symbol.
   */
  publishTime?: string;
}

export interface ReadOptions {
  /** Aborts an in-flight read, e.g. when the worker stops. */
  signal?: AbortSignal;
}

/**
 * Where prices come from, asked once per tick. `read` answers the symbols it has a fresh price
 * for; a symbol it cannot price now (stale, missing) is left out, so the worker keeps the last
 * price. A failure of the whole read (network, auth, rate limit, bad response) rejects with a
 * `PriceSourceError`.
 */
export interface PriceSource {
  read(symbols: string[], options?: ReadOptions): Promise<PriceQuote[]>;
  close?(): Promise<void> | void;
}

/** What a push source tells the worker. */
export interface PriceStreamListener {
  /** Quotes as they arrive; the worker publishes them in order. */
  quotes(quotes: PriceQuote[]): void;
  /** The stream is connected (`true`) or down (`false`); while down the worker polls its source. */
  state(up: boolean): void;
}

/**
 * A source that pushes quotes as they happen (Pyth's SSE stream). It reconnects by itself;
 * `state` says when it is down so that the worker can poll meanwhile.
 */
export interface PriceStream {
  /** Starts streaming `symbols` to `listener`. A second call while open throws. */
  open(symbols: string[], listener: PriceStreamListener): void;
  /** Ends the connection and every retry; resolves once nothing more will reach the listener. */
  close(): Promise<void>;
}

export type PriceSourceErrorCode =
  /** The source answered 401, or a 403 not about a feed: the API key is missing or wrong. */
  | 'source_unauthorized'
  /** The source answered 403 naming feeds the key's plan does not cover; `feedIds` holds them. */
  | 'source_not_entitled'
  /** The source answered 404 naming feed ids it does not know; `feedIds` holds them. */
  | 'source_unknown_feeds'
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
  /** Normalised feed ids (64 lower-case hex digits, no 0x) the answer named, for 403 and 404. */
  readonly feedIds: readonly string[];

  constructor(
    code: PriceSourceErrorCode,
    message: string,
    options: { status?: number; retryAfterMs?: number; feedIds?: readonly string[]; cause?: unknown } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'PriceSourceError';
    this.code = code;
    this.status = options.status;
    this.retryAfterMs = options.retryAfterMs;
    this.feedIds = options.feedIds ?? [];
  }
}
