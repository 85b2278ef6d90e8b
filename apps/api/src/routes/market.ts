import type { FastifyInstance } from 'fastify';
import type { ApiContext } from '../context.ts';

/** GET /prices: the latest known price of each configured symbol. */
export function registerMarketRoutes(app: FastifyInstance, ctx: ApiContext): void {
  app.get('/prices', async () => ctx.prices.getPrices(ctx.settings.symbols));
}
