import type { FastifyInstance } from 'fastify';
import type { Registry } from 'prom-client';
import type { MetricsAccess, MetricsRequest } from '@repo/http-access';
import type { ApiContext } from '../context.ts';
import { ApiError } from '../errors.ts';

const HEALTH_DB_TIMEOUT_MS = 1000;

/** GET /health, GET /metrics, GET /config. */
export function registerSystemRoutes(
  app: FastifyInstance,
  ctx: ApiContext,
  registry: Registry,
  metricsAccess: (request: MetricsRequest) => MetricsAccess,
): void {
  app.get('/health', async (_request, reply) => {
    const database = await pingWithin(() => ctx.db.ping(), HEALTH_DB_TIMEOUT_MS);
    const broker = ctx.broker.isUp();
    // Orders still commit while the broker is down (events wait in the outbox), so only a
    // database outage makes the API unhealthy.
    const status = !database ? 'down' : broker ? 'ok' : 'degraded';
    return reply.code(database ? 200 : 503).send({
      status,
      database: database ? 'up' : 'down',
      broker: broker ? 'up' : 'down',
    });
  });

  app.get('/metrics', async (request, reply) => {
    // `request.ip` is the forwarded client only when the peer is a trusted proxy.
    const access = metricsAccess({ clientAddress: request.ip, authorization: request.headers.authorization });
    if (!access.allowed) {
      throw access.status === 401
        ? new ApiError('unauthorized', 'metrics need the bearer token', access.headers)
        : new ApiError('forbidden', 'metrics are served to loopback clients only');
    }
    const body = await registry.metrics();
    return reply.type(registry.contentType).send(body);
  });

  app.get('/config', () =>
    Promise.resolve({
      ...ctx.settings.publicConfig,
      feeRate: ctx.settings.feeRate,
      maxPriceAgeMs: ctx.settings.maxPriceAgeMs,
    }),
  );
}

async function pingWithin(ping: () => Promise<void>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      ping().then(() => true),
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(false), ms);
      }),
    ]);
  } catch {
    return false;
  } finally {
    clearTimeout(timer);
  }
}
