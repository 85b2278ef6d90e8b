import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser } from 'playwright-core';
import { freePort, TradewireProcess } from '@repo/test-support';
import { launchBrowser } from './browser.ts';
import { webBuildDir } from './web-build.ts';

export interface AllInOne {
  browser: Browser;
  system: TradewireProcess;
  baseUrl: string;
  /** Closes the browser, stops the system and removes its data directory. */
  stop(): Promise<void>;
}

/**
 * The whole system in one process as `npm start` runs it (embedded database, in-process
 * broker) on free ports, serving the built page, plus a browser; `env` adds or overrides
 * variables.
 */
export async function startAllInOne(env: Record<string, string>): Promise<AllInOne> {
  const dataDir = mkdtempSync(join(tmpdir(), 'tradewire-web-test-'));
  const [staticDir, port, wsPort] = await Promise.all([webBuildDir(), freePort(), freePort()]);
  const system = new TradewireProcess([], {
    PORT: String(port),
    WS_PORT: String(wsPort),
    DATA_DIR: dataDir,
    STATIC_DIR: staticDir,
    ...env,
  });
  let browser: Browser | undefined;
  const stop = async () => {
    await browser?.close();
    await system.stop();
    rmSync(dataDir, { recursive: true, force: true });
  };
  try {
    [browser] = await Promise.all([launchBrowser(), system.ready]);
  } catch (err) {
    await stop();
    throw err;
  }
  return { browser, system, baseUrl: `http://127.0.0.1:${port}`, stop };
}
