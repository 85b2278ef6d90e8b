import type { FastifyInstance } from 'fastify';
import type { ApiContext } from '../context.ts';
import { isPriceStale } from '../price-age.ts';

/** GET /prices: the latest known price of each configured symbol, each marked stale or not. */
export function registerMarketRoutes(app: FastifyInstance, ctx: ApiContext): void {
  app.get('/prices', async () => {
    const prices = await ctx.prices.getPrices(ctx.settings.symbols);
    const now = ctx.now().getTime();
    return prices.map((p) => ({ ...p, stale: isPriceStale(p.timestamp, now, ctx.settings.maxPriceAgeMs) }));
  });
}
