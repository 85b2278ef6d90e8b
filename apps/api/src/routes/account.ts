import type { FastifyInstance } from 'fastify';
import type { ApiContext } from '../context.ts';
import { ApiError } from '../errors.ts';

/** GET /portfolio. */
export function registerAccountRoutes(app: FastifyInstance, ctx: ApiContext): void {
  app.get('/portfolio', { onRequest: ctx.auth.hook }, async (request) => {
    const { userId } = ctx.auth.sessionOf(request);
    const portfolio = await ctx.db.portfolio.get(userId);
    // A valid session of a user that no longer exists: treat it as no session at all.
    if (!portfolio) throw new ApiError('unauthorized', 'invalid or expired session');
    return portfolio;
  });
}
