import type { FastifyInstance } from 'fastify';
import type { ApiContext } from '../context.ts';
import { ApiError } from '../errors.ts';
import { isPriceStale } from '../price-age.ts';
import { CandlesQuery, DEFAULT_CANDLES, parseInput } from '../validation.ts';

/**
 * GET /prices: the latest known price of each configured symbol, each marked stale or not.
 * GET /candles: a symbol's OHLC candles at one interval, newest last.
 */
export function registerMarketRoutes(app: FastifyInstance, ctx: ApiContext): void {
  const symbols = new Set(ctx.settings.symbols);

  app.get('/prices', async () => {
    const prices = await ctx.prices.getPrices(ctx.settings.symbols);
    const now = ctx.now().getTime();
    return prices.map((p) => ({ ...p, stale: isPriceStale(p.timestamp, now, ctx.settings.maxPriceAgeMs) }));
  });

  app.get('/candles', async (request) => {
    await ctx.limits.beginCandles(request.ip);
    const query = parseInput(CandlesQuery, request.query ?? {}, 'query');
    if (!symbols.has(query.symbol)) {
      throw new ApiError('unknown_symbol', `unknown symbol; tradable: ${[...symbols].join(', ')}`);
    }
    const candles = await ctx.db.candles.list(query.symbol, query.interval, {
      limit: query.limit ?? DEFAULT_CANDLES,
      before: query.before ?? null,
    });
    return { symbol: query.symbol, interval: query.interval, candles };
  });
}
