import type { Browser } from 'playwright-core';
import { createTestDatabase, freePort, RedisServer, TradewireProcess } from '@repo/test-support';
import { launchBrowser } from './browser.ts';
import { webBuildDir } from './web-build.ts';

export interface SplitSystem {
  browser: Browser;
  redis: RedisServer;
  baseUrl: string;
  /** What every process of this system shares: ports, Redis, PostgreSQL, the built page, `env`. */
  env: Record<string, string>;
  /** Starts a process running `roles`, with `extra` variables over `env`; `stop()` stops it. */
  start(roles: string[], extra?: Record<string, string>): TradewireProcess;
  /** Stops every process started, the browser and redis-server, and drops the database. */
  stop(): Promise<void>;
}

/**
 * The roles run apart as in production, on a private redis-server and a PostgreSQL database
 * created for the test file, plus a browser; the caller starts the processes it wants.
 */
export async function startSplitSystem(databasePrefix: string, env: Record<string, string>): Promise<SplitSystem> {
  const [staticDir, port, wsPort] = await Promise.all([webBuildDir(), freePort(), freePort()]);
  let redis: RedisServer | undefined;
  let database: Awaited<ReturnType<typeof createTestDatabase>> | undefined;
  let browser: Browser | undefined;
  const processes: TradewireProcess[] = [];
  const stop = async () => {
    await browser?.close();
    for (const process of processes.reverse()) await process.stop();
    await redis?.stop();
    await database?.drop();
  };
  // Wait for every start, failed or not, so that `stop` ends whatever did start: a
  // redis-server left running when Chromium is missing would hold the test file open.
  const started = await Promise.allSettled([
    RedisServer.start().then((s) => (redis = s)),
    createTestDatabase(databasePrefix).then((d) => (database = d)),
    launchBrowser().then((b) => (browser = b)),
  ]);
  const failed = started.find((outcome) => outcome.status === 'rejected');
  if (failed || !redis || !database || !browser) {
    await stop();
    throw failed?.reason ?? new Error('split system did not start');
  }
  const shared = {
    PORT: String(port),
    WS_PORT: String(wsPort),
    REDIS_URL: redis.url,
    DATABASE_URL: database.url,
    STATIC_DIR: staticDir,
    ...env,
  };
  return {
    browser,
    redis,
    baseUrl: `http://127.0.0.1:${port}`,
    env: shared,
    start(roles, extra = {}) {
      const process = new TradewireProcess(roles, { ...shared, ...extra });
      processes.push(process);
      return process;
    },
    stop,
  };
}
