/**
 * `npm start [-- api|ws|worker ...]`: reads the environment, starts the roles, stops them on
 * SIGTERM/SIGINT. The only module that touches `process.env` and `process.exit`.
 */
import { createLogger } from '@repo/log';
import { ConfigError, loadConfig, parseRoles } from './config.ts';

/** A stop that takes longer than this is cut short; the process must be gone within 5 s. */
const SHUTDOWN_DEADLINE_MS = 4500;

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
  // Loaded after the configuration is known to be valid: a wrong variable is reported at
  // once, without first loading the database engine and every role.
  const { startSystem } = await import('./system.ts');
  let system;
  try {
    system = await startSystem(config, roles, logger);
  } catch (err) {
    logger.fatal({ err }, 'tradewire failed to start');
    process.stderr.write(`tradewire: failed to start: ${(err as Error).message}\n`);
    process.exit(1);
  }

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

  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down');
    const deadline = setTimeout(() => {
      logger.error('shutdown deadline passed, exiting');
      process.exit(1);
    }, SHUTDOWN_DEADLINE_MS);
    deadline.unref();
    system.stop().then(
      () => process.exit(0),
      (err: unknown) => {
        logger.error({ err }, 'error during shutdown');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}

await main();
