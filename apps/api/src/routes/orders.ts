import { createHash } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { IdempotencyKeyReusedError, SessionNotActiveError, checkSize, type OrderRecord } from '@repo/db';
import type { ApiContext } from '../context.ts';
import { ApiError } from '../errors.ts';
import { isPriceStale } from '../price-age.ts';
import { DEFAULT_PAGE_SIZE, OrderBody, OrdersQuery, parseInput } from '../validation.ts';

const SIZE_PROBLEMS = {
  not_decimal: 'size must be a decimal string such as "10" or "0.5" (no sign, exponent or leading zeros)',
  too_precise: 'size must have at most 9 decimals',
  not_positive: 'size must be greater than zero',
  too_large: 'size is larger than the maximum order size',
} as const;

/** How long an `Idempotency-Key` finds the order it was first used for. */
export const IDEMPOTENCY_KEY_TTL_MS = 24 * 60 * 60 * 1000;
const IDEMPOTENCY_KEY_PATTERN = /^[\x21-\x7e]{1,64}$/;

/** The request's `Idempotency-Key`, checked; undefined when there is none. */
function idempotencyKeyOf(request: FastifyRequest): string | undefined {
  const value = request.headers['idempotency-key'];
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || !IDEMPOTENCY_KEY_PATTERN.test(value)) {
    throw new ApiError('invalid_request', 'Idempotency-Key must be 1-64 visible ASCII characters');
  }
  return value;
}

/** POST /orders, GET /orders. */
export function registerOrderRoutes(app: FastifyInstance, ctx: ApiContext): void {
  const { db, settings, metrics } = ctx;
  const symbols = new Set(settings.symbols);

  /** The order of a POST /orders, checked; throws the 400 it deserves. */
  function checkOrder(request: FastifyRequest) {
    const body = parseInput(OrderBody, request.body, 'body');
    if (!symbols.has(body.symbol)) {
      throw new ApiError('unknown_symbol', `unknown symbol; tradable: ${[...symbols].join(', ')}`);
    }
    const size = checkSize(body.size, settings.maxOrderSize);
    if (!size.ok) throw new ApiError('invalid_request', SIZE_PROBLEMS[size.reason]);
    return { body, size: size.size, key: idempotencyKeyOf(request) };
  }

  /**
   * A refusal before the order's statements ran, so before they checked the session: a cached
   * session is looked up first, and a revoked token gets 401 rather than 400 or 429.
   */
  async function refuse(request: FastifyRequest, err: unknown): Promise<never> {
    await ctx.auth.confirm(request);
    throw err;
  }

  // The session may come from the auth cache: the order's own statements check it again (see
  // `session` of the order), so a logout still stops the next order.
  app.post('/orders', { onRequest: ctx.auth.cachedHook }, async (request, reply) => {
    const { userId, sessionId } = ctx.auth.sessionOf(request);
    // Counted before anything else: every attempt costs the server work, valid or not. The
    // price is read meanwhile (the limit's counters have a Redis connection of their own), so
    // an order waits for one of the two round trips, not both; a refusal wins over a bad body.
    const counted = ctx.limits.beginOrder(userId).then(
      () => null,
      (err: unknown) => err,
    );
    let checked;
    try {
      checked = checkOrder(request);
    } catch (err) {
      return refuse(request, (await counted) ?? err);
    }
    const { body, size, key } = checked;
    // Never rejects: a store that cannot answer gives the last price read, or none.
    const priceRead = ctx.prices.getPrice(body.symbol);
    const refusal = await counted;
    if (refusal) return refuse(request, refusal);
    // The same order whatever its spelling: "1.50" and "1.5" are one size.
    const requestHash = createHash('sha256').update(`${body.symbol}\n${body.side}\n${size}`).digest('hex');
    const price = await priceRead;
    let placed;
    try {
      placed = await db.orders.place({
        userId,
        symbol: body.symbol,
        quoteAsset: settings.quoteAsset,
        side: body.side,
        size,
        price: price?.price ?? null,
        priceStale: price !== null && isPriceStale(price.timestamp, ctx.now().getTime(), settings.maxPriceAgeMs),
        // Judged again when the order executes: waiting for a connection or the user's lock
        // must not let it fill at a price that has gone stale meanwhile.
        ...(price !== null ? { priceValidUntil: new Date(Date.parse(price.timestamp) + settings.maxPriceAgeMs) } : {}),
        feeRate: settings.feeRate,
        session: { id: sessionId, at: ctx.now() },
        ...(key === undefined
          ? {}
          : { idempotency: { key, requestHash, notBefore: new Date(ctx.now().getTime() - IDEMPOTENCY_KEY_TTL_MS) } }),
      });
    } catch (err) {
      if (err instanceof IdempotencyKeyReusedError) {
        throw new ApiError('idempotency_key_reused', 'this Idempotency-Key was used for a different order');
      }
      if (err instanceof SessionNotActiveError) throw ctx.auth.sessionEnded(request);
      throw err;
    }
    const { order } = placed;
    if (placed.replayed) {
      // The first attempt's answer, again; nothing was executed this time.
      void reply.header('Idempotent-Replayed', 'true');
    } else {
      // Committed. The relay publishes the recorded events; this request does not wait for it.
      ctx.relay.publishCommitted(placed.events);
      metrics.orders.inc({ outcome: order.status, reason: order.reason ?? '' });
    }

    if (order.status === 'filled') {
      return reply.code(201).send({
        orderId: order.orderId,
        status: 'filled',
        symbol: order.symbol,
        side: order.side,
        executedPrice: order.executedPrice,
        executedSize: order.executedSize,
        fee: order.fee,
        timestamp: order.timestamp,
        seq: order.seq,
      });
    }
    return reply.code(422).send({
      orderId: order.orderId,
      status: 'rejected',
      reason: order.reason,
      symbol: order.symbol,
      side: order.side,
      requestedSize: order.requestedSize,
      timestamp: order.timestamp,
      seq: order.seq,
    });
  });

  app.get('/orders', { onRequest: ctx.auth.hook }, async (request) => {
    const { userId } = ctx.auth.sessionOf(request);
    const query = parseInput(OrdersQuery, request.query ?? {}, 'query');
    const page = await db.orders.list(userId, {
      limit: query.limit ?? DEFAULT_PAGE_SIZE,
      before: query.before ?? null,
    });
    return { orders: page.orders.map(toView), nextBefore: page.nextBefore, seq: page.seq };
  });
}

function toView(order: OrderRecord) {
  return {
    orderId: order.orderId,
    status: order.status,
    symbol: order.symbol,
    side: order.side,
    requestedSize: order.requestedSize,
    executedPrice: order.executedPrice,
    executedSize: order.executedSize,
    fee: order.fee,
    reason: order.reason,
    timestamp: order.timestamp,
    seq: order.seq,
  };
}
