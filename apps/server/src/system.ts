import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import {
  DESIGN_CHANNEL_LAYOUT,
  MemoryBroker,
  checkLayoutAgreement,
  connectRedisBroker,
  connectRedisClusterBroker,
  createEventPublisher,
  createPriceStore,
  partitionedChannelLayout,
  type Broker,
  type ChannelLayout,
} from '@repo/broker';
import type { Logger } from '@repo/log';
import { createSessionStore, type Database } from '@repo/db';
import {
  closeRedisClient,
  createRedisClient,
  createRedisClusterClient,
  type RedisClient,
  type RedisClusterClient,
} from '@repo/redis';
import { withTimeout } from '@repo/retry';
import { createGateway, type Gateway, type GatewayNode, type GatewayOptions } from '@repo/ws';
import type { PriceSource, PriceStream, PriceWorker } from '@repo/price-worker';
import { openDatabaseInBackground } from './background-database.ts';
import { openDatabaseAtStart } from './database-at-start.ts';
import type { Config, Role } from './config.ts';

export interface RunningSystem {
  roles: Set<Role>;
  broker: Broker;
  db: Database | null;
  /** Base URL of the API (`http://host:port`), when the api role runs. */
  apiUrl: string | null;
  /** URL of the gateway (`ws://host:port`), when the ws role runs. */
  wsUrl: string | null;
  /** Stops every role, then the database and the broker. Safe to call twice. */
  stop(): Promise<void>;
}

/** The rate-limit counters' own Redis connection, made after the broker's, gets this long. */
const RATE_LIMIT_CONNECT_TIMEOUT_MS = 10_000;
/** What a failed start undoes gets this long: the launcher then exits 1 whatever is left. */
const FAILED_START_CLEANUP_MS = 4000;

/**
 * Starts the requested roles in this process on the configured broker and database:
 * in-process broker and embedded PostgreSQL when `REDIS_URL` / `REDIS_CLUSTER_NODES` /
 * `DATABASE_URL` are unset. Each part is built by its own factory; this is the only place that
 * wires them together.
 */
export async function startSystem(
  config: Config,
  roles: Set<Role>,
  logger: Logger,
  /** When this process is one gateway worker of several (`WS_WORKERS`): its link to the node. */
  gatewayNode?: GatewayNode & { readonly registry: GatewayOptions['registry'] },
): Promise<RunningSystem> {
  const stops: (() => Promise<void>)[] = [];
  const stopAll = async () => {
    for (const stop of stops.reverse().splice(0)) {
      try {
        await stop();
      } catch (err) {
        logger.error({ err }, 'error while stopping');
      }
    }
  };

  try {
    const brokerLogger = logger.child({ part: 'broker' });
    const broker: Broker = config.redisClusterNodes
      ? await connectRedisClusterBroker(config.redisClusterNodes, { logger: brokerLogger })
      : config.redisUrl
        ? await connectRedisBroker(config.redisUrl, { logger: brokerLogger })
        : new MemoryBroker({ logger: brokerLogger });
    stops.push(() => broker.close());
    // Publishers and gateways must agree on each event's channel: the design's names, except on
    // a Redis Cluster, where private channels are split by user and prices by symbol.
    const channelLayout: ChannelLayout = config.redisClusterNodes
      ? partitionedChannelLayout(config.redisPartitions)
      : DESIGN_CHANNEL_LAYOUT;
    await checkLayoutAgreement(broker, channelLayout);

    const databaseOptions = {
      ...(config.databaseUrl ? { url: config.databaseUrl } : { dataDir: config.dataDir }),
      logger: logger.child({ part: 'db' }),
    };
    // The API and the gateway cannot serve without the database: their start waits a while for
    // it. The worker only writes candles there: alone, it opens the database in the background,
    // so prices never wait for it.
    let db: Database | null = null;
    let candleDb: Promise<Database>;
    if (roles.has('api') || roles.has('ws')) {
      const opened = await openDatabaseAtStart(databaseOptions, databaseOptions.logger);
      db = opened;
      candleDb = Promise.resolve(opened);
      stops.push(() => opened.close());
    } else {
      const background = openDatabaseInBackground(databaseOptions, logger.child({ part: 'db' }));
      candleDb = background.ready;
      stops.push(() => background.close());
    }

    let apiUrl: string | null = null;
    let wsUrl: string | null = null;
    let gatewayPort = config.wsPort;

    // The worker first: in the all-in-one mode a price exists before the first order arrives.
    if (roles.has('worker')) {
      const worker = await startPriceWorker(config, broker, channelLayout, candleDb, logger, stops);
      stops.push(() => worker.stop());
    }

    if (roles.has('ws') && db) {
      const gateway: Gateway = await createGateway({
        broker,
        channelLayout,
        sessions: createSessionStore(db),
        loadPortfolio: (userId) => db.getPortfolioEvent(userId),
        // The replay history is the outbox itself: durable, shared by every gateway node, and
        // untouched by a Redis restart.
        history: {
          read: (userId, afterSeq, limit, maxBytes) => db.outbox.orderHistory(userId, afterSeq, limit, maxBytes),
        },
        symbols: config.symbols,
        allowedOrigins: config.allowedOrigins,
        trustProxy: config.trustProxy,
        limitExempt: config.wsLimitExempt,
        limits: config.wsLimits,
        metricsToken: config.metricsToken,
        ...(gatewayNode ? { node: gatewayNode, registry: gatewayNode.registry } : {}),
        logger: logger.child({ part: 'ws' }),
      });
      gatewayPort = await gateway.listen(config.wsPort, config.host);
      wsUrl = `ws://${config.host}:${gatewayPort}`;
      stops.push(() => gateway.close());
    }

    if (roles.has('api') && db) {
      const staticDir = resolve(config.staticDir);
      // Rate-limit counters in Redis hold across API processes; a client of their own.
      let rateLimitRedis: RedisClient | RedisClusterClient | undefined;
      if (config.redisClusterNodes) {
        const cluster = createRedisClusterClient(config.redisClusterNodes);
        const warn = (err: Error) => logger.warn({ err: err.message }, 'rate-limit redis cluster error');
        cluster.on('error', warn);
        cluster.on('node-error', warn);
        stops.push(async () => {
          // Closing waits for replies; a node that is down would make it wait for ever.
          await withTimeout(cluster.close(), 2000, 'rate-limit cluster close').catch(() => cluster.destroy());
        });
        // A cluster that went away since the broker connected would keep this waiting for ever.
        await withTimeout(cluster.connect(), RATE_LIMIT_CONNECT_TIMEOUT_MS, 'rate-limit redis cluster connect');
        rateLimitRedis = cluster;
      } else if (config.redisUrl) {
        const client = createRedisClient(config.redisUrl);
        client.on('error', (err: Error) => logger.warn({ err: err.message }, 'rate-limit redis error'));
        stops.push(() => closeRedisClient(client));
        // node-redis retries a first connect for ever: a Redis that went away since the broker
        // connected would keep this start waiting, never listening and never exiting.
        await withTimeout(client.connect(), RATE_LIMIT_CONNECT_TIMEOUT_MS, 'rate-limit redis connect');
        rateLimitRedis = client;
      }
      // Loaded only for the role: a gateway worker of a node never pays for the API's modules.
      const { createApi } = await import('@repo/api');
      const api = createApi({
        db,
        broker,
        channelLayout,
        symbols: config.symbols,
        feeRate: config.feeRate,
        startingBalanceUsd: config.startingBalanceUsd,
        sessionTtlMs: config.sessionTtlMs,
        staticDir: existsSync(staticDir) ? staticDir : null,
        publicConfig: { wsUrl: config.wsPublicUrl ?? null, wsPort: gatewayPort },
        allowedOrigins: config.allowedOrigins,
        maxPriceAgeMs: config.maxPriceAgeMs,
        rateLimits: { ordersPerUser: { max: config.ordersPerUserPerSecond, windowMs: 1000 } },
        rateLimitRedis,
        metricsToken: config.metricsToken,
        // The same list the gateway uses, so both agree on who a client is.
        trustProxy: config.trustProxy.length > 0 ? config.trustProxy : false,
        relay: {
          retentionMs: config.historyRetentionMs,
          retentionEvents: config.historyRetentionEvents,
          // Often enough that an event is never kept much past its retention.
          pruneIntervalMs: Math.min(10 * 60_000, Math.max(100, Math.floor(config.historyRetentionMs / 4))),
        },
        logger: logger.child({ part: 'api' }),
      });
      // Before listening: createApi started the relay and housekeeping, which a failed listen
      // must stop before the database and broker close under them.
      stops.push(() => api.close());
      const address = await api.app.listen({ port: config.port, host: config.host });
      apiUrl = address.replace('[::1]', 'localhost');
      if (!existsSync(staticDir)) {
        logger.warn({ staticDir }, 'web app not built: run `npm run build:web` to serve the page');
      }
    }

    return { roles, broker, db, apiUrl, wsUrl, stop: stopAll };
  } catch (err) {
    // Bounded: a dependency that stopped answering must not keep a failed start from exiting.
    await withTimeout(stopAll(), FAILED_START_CLEANUP_MS, 'cleanup after a failed start').catch((cleanupErr: unknown) =>
      logger.error({ err: (cleanupErr as Error).message }, 'cleanup after a failed start did not finish'),
    );
    throw err;
  }
}

/**
 * The price worker on the configured source. With Pyth, every symbol's feed id is known (from
 * `PYTH_FEED_IDS`, built in for SOL, or looked up on Hermes) before the first tick: a symbol
 * Hermes has no `Crypto.<SYMBOL>/USD` feed for stops the start with a message naming it.
 */
async function startPriceWorker(
  config: Config,
  broker: Broker,
  channelLayout: ChannelLayout,
  db: Promise<Database>,
  logger: Logger,
  stops: (() => Promise<void>)[],
): Promise<PriceWorker> {
  const { createCandleRecorder, createPriceWorker, createPythSource, createSimulatedSource } =
    await import('@repo/price-worker');
  // Stopped after the worker (stops run in reverse), so the last ticks reach the last flush.
  const candles = createCandleRecorder({
    db,
    retention: config.candleRetentionMs,
    flushIntervalMs: config.candleFlushIntervalMs,
    logger: logger.child({ part: 'candles' }),
  });
  stops.push(() => candles.close());
  candles.start();
  let source: PriceSource;
  let stream: PriceStream | undefined;
  if (config.priceSource === 'pyth') {
    const pyth = createPythSource({
      url: config.pythHermesUrl,
      ...(config.pythApiKey ? { apiKey: config.pythApiKey } : {}),
      feedIds: config.pythFeedIds,
      maxConfRatio: config.pythMaxConfRatio,
      logger: logger.child({ part: 'pyth' }),
    });
    stops.push(() => Promise.resolve(pyth.close()));
    await pyth.resolveFeeds(config.symbols);
    source = pyth;
    if (config.pythTransport === 'stream') stream = pyth.stream;
  } else {
    source = createSimulatedSource(config.priceSeed !== undefined ? { seed: config.priceSeed } : {});
  }
  const worker = createPriceWorker({
    source,
    ...(stream ? { stream } : {}),
    prices: createPriceStore(broker),
    publisher: createEventPublisher(broker, { layout: channelLayout }),
    symbols: config.symbols,
    intervalMs: config.priceIntervalMs,
    onPublished: (event) => candles.record(event),
    logger: logger.child({ part: 'worker' }),
  });
  await worker.tick().catch((err: unknown) => logger.warn({ err }, 'first price tick failed'));
  worker.start();
  return worker;
}
