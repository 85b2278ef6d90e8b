/**
 * The HTTP API as the page uses it (same origin: the API serves the page, and Vite's dev
 * server proxies these paths). Every reply is decoded defensively: a field of the wrong
 * type becomes null or the item is dropped, it never reaches the screen as "undefined".
 */

/** A request that did not succeed. `code` is the API's error code, or one of ours below. */
export class ApiError extends Error {
  readonly status: number;
  /** The API's `error.code`, or `network_error` (no answer) / `bad_response` (unreadable answer). */
  readonly code: string;
  constructor(status: number, code: string, message: string) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
  }
}

/** A request with no answer within this time fails, so a dead API never leaves a spinner forever. */
const REQUEST_TIMEOUT_MS = 10_000;

export interface Session {
  userId: number;
  token: string;
  username: string;
}

export interface Price {
  symbol: string;
  price: string;
  timestamp: string;
  /** From `GET /prices` only: the server judged the price too old to trade at. */
  stale?: boolean;
}

export type OrderStatus = 'filled' | 'rejected' | 'pending';

/** One order as the page shows it, whichever source (REST, POST reply, WebSocket) it came from. */
export interface OrderView {
  orderId: number;
  status: OrderStatus;
  symbol: string;
  side: 'buy' | 'sell' | null;
  /** Executed size of a fill; requested size of a rejection. */
  size: string | null;
  price: string | null;
  fee: string | null;
  reason: string | null;
  timestamp: string | null;
  /** The order's place in its user's order-event sequence, when the source carried it. */
  seq: number | null;
}

export interface Balance {
  asset: string;
  available: string;
  locked: string;
}
export interface Position {
  asset: string;
  size: string;
  avgEntryPrice: string;
}
export interface Portfolio {
  balances: Balance[];
  positions: Position[];
  /** The portfolio version when the source carries one (WebSocket events do). */
  version: number | null;
}

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const str = (v: unknown): string | null => (typeof v === 'string' && v.length > 0 ? v : null);
const decimal = (v: unknown): string | null => {
  if (typeof v === 'string' && /^-?\d+(?:\.\d+)?$/.test(v)) return v;
  return null;
};
const id = (v: unknown): number | null => {
  const n = typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : v;
  return typeof n === 'number' && Number.isSafeInteger(n) && n > 0 ? n : null;
};

async function request(
  path: string,
  init: { method?: string; token?: string; body?: unknown; headers?: Record<string, string> } = {},
): Promise<{ status: number; data: unknown; headers: Headers }> {
  const headers: Record<string, string> = { accept: 'application/json', ...init.headers };
  if (init.token) headers.authorization = `Bearer ${init.token}`;
  if (init.body !== undefined) headers['content-type'] = 'application/json';
  let response: Response;
  try {
    response = await fetch(path, {
      method: init.method ?? 'GET',
      headers,
      body: init.body === undefined ? null : JSON.stringify(init.body),
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    });
  } catch {
    throw new ApiError(0, 'network_error', 'The server cannot be reached');
  }
  if (response.status === 204) return { status: 204, data: null, headers: response.headers };
  let data: unknown = null;
  try {
    data = await response.json();
  } catch {
    if (response.ok) throw new ApiError(response.status, 'bad_response', 'The server sent an unreadable answer');
  }
  return { status: response.status, data, headers: response.headers };
}

function errorFrom(status: number, data: unknown): ApiError {
  const error = isObject(data) && isObject(data.error) ? data.error : null;
  const code = str(error?.code) ?? (status >= 500 ? 'server_error' : 'request_failed');
  const message =
    str(error?.message) ?? (status >= 500 ? 'The server had a problem; try again' : `Request failed (${status})`);
  return new ApiError(status, code, message);
}

function sessionFrom(data: unknown, username: string): Session {
  const userId = isObject(data) ? id(data.userId) : null;
  const token = isObject(data) ? str(data.token) : null;
  if (userId === null || token === null)
    throw new ApiError(200, 'bad_response', 'The server sent an unreadable answer');
  return { userId, token, username };
}

export async function register(username: string, password: string): Promise<Session> {
  const { status, data } = await request('/auth/register', { method: 'POST', body: { username, password } });
  if (status !== 201 && status !== 200) throw errorFrom(status, data);
  return sessionFrom(data, username);
}

export async function login(username: string, password: string): Promise<Session> {
  const { status, data } = await request('/auth/login', { method: 'POST', body: { username, password } });
  if (status !== 200) throw errorFrom(status, data);
  return sessionFrom(data, username);
}

export async function logout(token: string): Promise<void> {
  const { status, data } = await request('/auth/logout', { method: 'POST', token });
  // 401: the session had already ended, which is what logging out wants.
  if (status !== 204 && status !== 200 && status !== 401) throw errorFrom(status, data);
}

/** What the page needs from the server: where the gateway is, the markets, the fee rate, the price age limit. */
export interface PublicConfig {
  wsUrl: string | null;
  wsPort: number | null;
  /** The tradable symbols, each quoted in USD, in the server's order; empty when the server did not say. */
  symbols: string[];
  /** Fee rate of every fill (e.g. "0.0001"); null when the server did not say. */
  feeRate: string | null;
  /** A price older than this cannot be traded at; null when the server did not say. */
  maxPriceAgeMs: number | null;
}

export async function getConfig(): Promise<PublicConfig> {
  const { status, data } = await request('/config');
  if (status !== 200 || !isObject(data)) throw errorFrom(status, data);
  const wsPort = typeof data.wsPort === 'number' && Number.isInteger(data.wsPort) ? data.wsPort : null;
  const maxAge = data.maxPriceAgeMs;
  const symbols = Array.isArray(data.symbols) ? data.symbols.filter((v): v is string => isSymbol(v)) : [];
  return {
    wsUrl: str(data.wsUrl),
    wsPort,
    symbols: [...new Set(symbols)],
    feeRate: decimal(data.feeRate),
    maxPriceAgeMs: typeof maxAge === 'number' && Number.isSafeInteger(maxAge) && maxAge > 0 ? maxAge : null,
  };
}

/** The gateway URL: the configured one, else the page's host on the gateway port. */
export function gatewayUrl(config: PublicConfig, location: Pick<Location, 'protocol' | 'hostname'>): string | null {
  if (config.wsUrl) return config.wsUrl;
  if (config.wsPort === null) return null;
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  const host = location.hostname.includes(':') ? `[${location.hostname}]` : location.hostname;
  return `${scheme}//${host}:${config.wsPort}`;
}

export function priceFrom(v: unknown): Price | null {
  if (!isObject(v)) return null;
  const symbol = str(v.symbol);
  const price = decimal(v.price);
  const timestamp = str(v.timestamp);
  if (!symbol || !price || !timestamp) return null;
  return typeof v.stale === 'boolean' ? { symbol, price, timestamp, stale: v.stale } : { symbol, price, timestamp };
}

export async function getPrices(): Promise<Price[]> {
  const { status, data } = await request('/prices');
  if (status !== 200) throw errorFrom(status, data);
  const list = Array.isArray(data) ? data : isObject(data) && Array.isArray(data.prices) ? data.prices : [];
  return list.map(priceFrom).filter((p): p is Price => p !== null);
}

const isSymbol = (v: unknown): v is string => typeof v === 'string' && /^[A-Z0-9]{1,16}$/.test(v);

/** One OHLC candle: open time in ms, prices as decimal strings. */
export interface Candle {
  t: number;
  o: string;
  h: string;
  l: string;
  c: string;
}

function candleFrom(v: unknown): Candle | null {
  if (!isObject(v)) return null;
  const t = v.t;
  const [o, h, l, c] = [decimal(v.o), decimal(v.h), decimal(v.l), decimal(v.c)];
  if (typeof t !== 'number' || !Number.isSafeInteger(t) || t < 0 || !o || !h || !l || !c) return null;
  return { t, o, h, l, c };
}

/** A symbol's candles at `interval` (`1s`, `1m`, `1h`), oldest first; at most `limit`, opened before `before` (ms). */
export async function getCandles(
  symbol: string,
  interval: string,
  options: { limit?: number; before?: number } = {},
): Promise<Candle[]> {
  const query = new URLSearchParams({ symbol, interval });
  if (options.limit !== undefined) query.set('limit', String(options.limit));
  if (options.before !== undefined) query.set('before', String(options.before));
  const { status, data } = await request(`/candles?${query.toString()}`);
  if (status !== 200) throw errorFrom(status, data);
  const list = isObject(data) && Array.isArray(data.candles) ? data.candles : [];
  const candles = list.map(candleFrom).filter((c): c is Candle => c !== null);
  // Oldest first and one per time whatever the server sent, so the chart's time axis only moves forward.
  candles.sort((a, b) => a.t - b.t);
  return candles.filter((c, i) => i === 0 || c.t !== candles[i - 1]!.t);
}

const side = (v: unknown): 'buy' | 'sell' | null => (v === 'buy' || v === 'sell' ? v : null);

/** An order from any of the API's shapes (list item, POST reply, WebSocket event). */
export function orderFrom(v: unknown, fallback: Partial<OrderView> = {}): OrderView | null {
  if (!isObject(v)) return null;
  const orderId = id(v.orderId ?? v.id);
  if (orderId === null) return null;
  const type = v.type;
  const status: OrderStatus =
    v.status === 'filled' || type === 'order_filled'
      ? 'filled'
      : v.status === 'rejected' || type === 'order_rejected'
        ? 'rejected'
        : 'pending';
  return {
    orderId,
    status,
    symbol: str(v.symbol) ?? str(v.baseAsset) ?? fallback.symbol ?? 'SOL',
    side: side(v.side) ?? fallback.side ?? null,
    size: decimal(v.executedSize) ?? decimal(v.requestedSize) ?? decimal(v.size) ?? fallback.size ?? null,
    price: decimal(v.executedPrice) ?? decimal(v.price) ?? null,
    fee: decimal(v.fee) ?? null,
    reason: str(v.reason) ?? null,
    timestamp: str(v.timestamp) ?? str(v.createdAt) ?? fallback.timestamp ?? null,
    seq: id(v.seq),
  };
}

/** How many orders the page loads; the list shows the newest ones. */
const ORDERS_PAGE_SIZE = 50;

export async function getOrders(token: string): Promise<OrderView[]> {
  const { status, data } = await request(`/orders?limit=${ORDERS_PAGE_SIZE}`, { token });
  if (status !== 200) throw errorFrom(status, data);
  // Tolerant of the list's envelope: a bare array or {orders|items|data: [...]}.
  const list = Array.isArray(data)
    ? data
    : isObject(data)
      ? ([data.orders, data.items, data.data].find(Array.isArray) ?? [])
      : [];
  return (list as unknown[]).map((item) => orderFrom(item)).filter((o): o is OrderView => o !== null);
}

/**
 * `replayed`: the server executed nothing for this request and answered with the result of an
 * earlier request that carried the same Idempotency-Key (its `Idempotent-Replayed: true`).
 */
export type PlaceOrderResult =
  | { ok: true; order: OrderView; replayed: boolean }
  | { ok: false; order: OrderView; replayed: boolean; error: ApiError }
  | { ok: false; order: null; error: ApiError };

/** Attempts of one order when no answer comes back (the same Idempotency-Key each time). */
const ORDER_ATTEMPTS = 3;
const ORDER_RETRY_DELAY_MS = [300, 1000];

/** A fresh key for one user action; a retry of that action reuses it. */
export function newIdempotencyKey(): string {
  return crypto.randomUUID();
}

/**
 * True when the order's fate is unknown: no answer came back, or only a server error (5xx),
 * so it may have executed. Placing it again must reuse its key; only a definite answer
 * (2xx, 4xx) frees it.
 */
export function isUndecided(result: PlaceOrderResult): boolean {
  return !result.ok && result.order === null && (result.error.status === 0 || result.error.status >= 500);
}

/**
 * Places a market order. A rejection (422) is a result, not an exception: the order exists
 * and has a reason. Other failures (bad input, session gone, network) come back as `error`.
 *
 * When no answer arrives (network error, timeout) or the server answers 502-504, the request
 * is sent again with the same `idempotencyKey`: the server executes it at most once and
 * answers a retry with the first attempt's result.
 */
export async function placeOrder(
  token: string,
  input: { symbol: string; side: 'buy' | 'sell'; size: string },
  idempotencyKey: string = newIdempotencyKey(),
): Promise<PlaceOrderResult> {
  let reply: { status: number; data: unknown; headers: Headers } | undefined;
  let failure: ApiError | undefined;
  for (let attempt = 0; attempt < ORDER_ATTEMPTS; attempt++) {
    if (attempt > 0) await new Promise((r) => setTimeout(r, ORDER_RETRY_DELAY_MS[attempt - 1] ?? 1000));
    try {
      reply = await request('/orders', {
        method: 'POST',
        token,
        body: input,
        headers: { 'idempotency-key': idempotencyKey },
      });
      failure = undefined;
      if (reply.status < 502 || reply.status > 504) break;
    } catch (err) {
      failure = err as ApiError;
    }
  }
  if (failure || !reply)
    return { ok: false, order: null, error: failure ?? new ApiError(0, 'network_error', 'No answer') };
  const { status, data } = reply;
  const replayed = reply.headers.get('idempotent-replayed') === 'true';
  const fallback = { symbol: input.symbol, side: input.side, size: input.size, timestamp: new Date().toISOString() };
  if (status === 201 || status === 200) {
    const order = orderFrom(data, fallback);
    if (order) return { ok: true, order, replayed };
    return {
      ok: false,
      order: null,
      error: new ApiError(status, 'bad_response', 'The server sent an unreadable answer'),
    };
  }
  const rejected = status === 422 ? orderFrom(data, fallback) : null;
  if (rejected && rejected.status === 'rejected') {
    return {
      ok: false,
      order: rejected,
      replayed,
      error: new ApiError(status, 'order_rejected', rejected.reason ?? 'Order rejected'),
    };
  }
  return { ok: false, order: null, error: errorFrom(status, data) };
}

function balanceFrom(v: unknown): Balance | null {
  if (!isObject(v)) return null;
  const asset = str(v.asset);
  const available = decimal(v.available);
  return asset && available ? { asset, available, locked: decimal(v.locked) ?? '0' } : null;
}
function positionFrom(v: unknown): Position | null {
  if (!isObject(v)) return null;
  const asset = str(v.asset);
  const size = decimal(v.size);
  return asset && size ? { asset, size, avgEntryPrice: decimal(v.avgEntryPrice) ?? '0' } : null;
}

export function portfolioFrom(v: unknown): Portfolio | null {
  if (!isObject(v) || !Array.isArray(v.balances) || !Array.isArray(v.positions)) return null;
  const version = typeof v.version === 'number' && Number.isSafeInteger(v.version) ? v.version : null;
  return {
    balances: v.balances.map(balanceFrom).filter((b): b is Balance => b !== null),
    positions: v.positions.map(positionFrom).filter((p): p is Position => p !== null),
    version,
  };
}

export async function getPortfolio(token: string): Promise<Portfolio> {
  const { status, data } = await request('/portfolio', { token });
  if (status !== 200) throw errorFrom(status, data);
  const portfolio = portfolioFrom(data);
  if (!portfolio) throw new ApiError(status, 'bad_response', 'The server sent an unreadable portfolio');
  return portfolio;
}
