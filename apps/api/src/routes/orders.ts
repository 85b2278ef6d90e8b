import type { FastifyInstance } from 'fastify';
import { checkSize, type OrderRecord } from '@repo/db';
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

/** POST /orders, GET /orders. */
export function registerOrderRoutes(app: FastifyInstance, ctx: ApiContext): void {
  const { db, settings, metrics } = ctx;
  const symbols = new Set(settings.symbols);

  app.post('/orders', { onRequest: ctx.auth.hook }, async (request, reply) => {
    const { userId } = ctx.auth.sessionOf(request);
    // Counted before anything else: every attempt costs the server work, valid or not.
    await ctx.limits.beginOrder(userId);
    const body = parseInput(OrderBody, request.body, 'body');
    if (!symbols.has(body.symbol)) {
      throw new ApiError('unknown_symbol', `unknown symbol; tradable: ${[...symbols].join(', ')}`);
    }
    const size = checkSize(body.size, settings.maxOrderSize);
    if (!size.ok) throw new ApiError('invalid_request', SIZE_PROBLEMS[size.reason]);

    // Read before the transaction: nothing slow may run while the user's rows are locked.
    const price = await ctx.prices.getPrice(body.symbol);
    const { order } = await db.orders.place({
      userId,
      symbol: body.symbol,
      quoteAsset: settings.quoteAsset,
      side: body.side,
      size: size.size,
      price: price?.price ?? null,
      priceStale: price !== null && isPriceStale(price.timestamp, ctx.now().getTime(), settings.maxPriceAgeMs),
      feeRate: settings.feeRate,
    });
    // Committed. The relay publishes the recorded events; this request does not wait for it.
    ctx.relay.kick();
    metrics.orders.inc({ outcome: order.status, reason: order.reason ?? '' });

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
