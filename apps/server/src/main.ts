/**
 * `npm start [-- api|ws|worker ...]`: reads the environment, starts the roles, stops them on
 * SIGTERM/SIGINT. The only module that touches `process.env` and ends the process (`process.exit`,
 * or `exitAfterFlush` once a logger exists).
 *
 * With `WS_WORKERS` above 1 the gateway runs as a node of several processes (node:cluster):
 * this process becomes their primary (it also runs the other roles asked for), and each
 * worker runs this same file as one gateway.
 */
import cluster from 'node:cluster';
import { createLogger, exitAfterFlush, type Logger } from '@repo/log';
import { ConfigError, loadConfig, parseRoles, type Config, type Role } from './config.ts';

/** A stop that takes longer than this is cut short; the process must be gone within 5 s. */
const SHUTDOWN_DEADLINE_MS = 4500;
/** A gateway worker's own deadline: inside the primary's, so the primary sees it go. */
const WORKER_SHUTDOWN_DEADLINE_MS = SHUTDOWN_DEADLINE_MS - 500;

async function main(): Promise<void> {
  let config;
  let roles;
  try {
    config = loadConfig(process.env);
    roles = parseRoles(process.argv.slice(2), config);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`tradewire: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }

  // A person at a terminal reads lines; a pipe (a log shipper, the tests) gets JSON.
  const logger = createLogger({ level: config.logLevel, name: 'tradewire', pretty: process.stdout.isTTY === true });
  if (cluster.isWorker) await runGatewayWorker(config, logger);
  else if (roles.has('ws') && config.wsWorkers > 1) await runGatewayPrimary(config, roles, logger);
  else await runProcess(config, roles, logger);
}

/** Every role asked for, in this one process. */
async function runProcess(config: Config, roles: Set<Role>, logger: Logger): Promise<void> {
  // Loaded after the configuration is known to be valid: a wrong variable is reported at
  // once, without first loading the database engine and every role.
  const { startSystem } = await import('./system.ts');
  const system = await startOrExit(() => startSystem(config, roles, logger), logger);
  stopOnSignals(() => system.stop(), logger, SHUTDOWN_DEADLINE_MS);
  logger.info(
    {
      roles: [...roles],
      api: system.apiUrl,
      ws: system.wsUrl,
      broker: system.broker.kind,
      database: config.databaseUrl ? 'postgres' : `embedded (${config.dataDir})`,
    },
    'tradewire ready',
  );
}

/**
 * The primary of a gateway node: forks `WS_WORKERS` gateway workers on `WS_PORT`, and runs
 * the other roles asked for (api, worker) itself. Serves no socket of its own.
 */
async function runGatewayPrimary(config: Config, roles: Set<Role>, logger: Logger): Promise<void> {
  const { startGatewayWorkers } = await import('./gateway-workers.ts');
  const others = new Set([...roles].filter((role) => role !== 'ws'));
  // A primary of gateways alone loads none of the roles' modules: it starts in a moment.
  const system =
    others.size > 0
      ? await startOrExit(async () => (await import('./system.ts')).startSystem(config, others, logger), logger)
      : null;
  const workers = await startOrExit(
    () => startGatewayWorkers(config, logger),
    logger,
    () => system?.stop(),
  );
  stopOnSignals(
    async () => {
      await Promise.all([workers.stop(), system?.stop()]);
    },
    logger,
    SHUTDOWN_DEADLINE_MS,
  );
  logger.info(
    {
      roles: [...roles],
      api: system?.apiUrl ?? null,
      ws: `ws://${config.host}:${workers.port}`,
      workers: config.wsWorkers,
      broker: config.redisClusterNodes ? 'redis-cluster' : 'redis',
      database: 'postgres',
    },
    'tradewire ready',
  );
}

/** One gateway worker of a node: the ws role, its limits counted and its metrics gathered by the primary. */
async function runGatewayWorker(config: Config, logger: Logger): Promise<void> {
  const { startSystem } = await import('./system.ts');
  const { createWorkerLink } = await import('@repo/ws');
  const workerId = cluster.worker!.id;
  const workerLogger = logger.child({ worker: workerId });
  const link = createWorkerLink({ workerId });
  const system = await startOrExit(() => startSystem(config, new Set(['ws']), workerLogger, link), workerLogger);
  stopOnSignals(() => system.stop(), workerLogger, WORKER_SHUTDOWN_DEADLINE_MS);
  // A worker listens on no port: the primary hands it the node's connections from now on.
  link.ready();
  workerLogger.info({ pid: process.pid }, 'gateway worker ready');
}

/** Runs `start`; on failure logs why, undoes `cleanup` and exits 1. */
async function startOrExit<T>(start: () => Promise<T>, logger: Logger, cleanup?: () => unknown): Promise<T> {
  try {
    return await start();
  } catch (err) {
    logger.error({ err }, 'tradewire failed to start');
    process.stderr.write(`tradewire: failed to start: ${(err as Error).message}\n`);
    await Promise.resolve(cleanup?.()).catch(() => {});
    exitAfterFlush(logger, 1);
    // The exit comes once the log lines are out; nothing else runs meanwhile.
    return new Promise<never>(() => {});
  }
}

/**
 * On SIGTERM or SIGINT: `stop()`, then exit; past `deadlineMs` exit anyway. Installed before
 * the "ready" line goes out: whoever reads that line may signal at once.
 */
function stopOnSignals(stop: () => Promise<void>, logger: Logger, deadlineMs: number): void {
  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down');
    // Every exit goes through exitAfterFlush: a plain process.exit can hang for good flushing
    // log lines to a reader that went away.
    const deadline = setTimeout(() => {
      logger.error('shutdown deadline passed, exiting');
      exitAfterFlush(logger, 1);
    }, deadlineMs);
    deadline.unref();
    stop().then(
      () => exitAfterFlush(logger, 0),
      (err: unknown) => {
        logger.error({ err }, 'error during shutdown');
        exitAfterFlush(logger, 1);
      },
    );
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}

await main();
