import { connectRedisBroker, createPriceStore } from '@repo/broker';
import type { EndToEndClientResult } from '../load/end-to-end.ts';
import { sleep } from './clock.ts';
import { startGenerator } from './generator.ts';
import { spawnNodeTs, type PinnedProcess } from './processes.ts';
import type { EndToEndResult } from './results.ts';

export interface EndToEndOptions {
  rate: number;
  users: number;
  warmupS: number;
  measureS: number;
  redisUrl: string;
  databaseUrl: string;
  usersFile: string;
  /** CPU of the API and gateway processes. */
  core: number;
  generatorCore: number;
}

/** Starts one role of the real launcher (`apps/server/src/main.ts <role>`) and waits for "tradewire ready". */
async function startRole(
  role: 'api' | 'ws',
  core: number,
  env: Record<string, string>,
): Promise<{ proc: PinnedProcess; url: string }> {
  const proc = spawnNodeTs(core, 'apps/server/src/main.ts', [role], [], {
    env: { LOG_LEVEL: 'info', HOST: '127.0.0.1', PORT: '0', WS_PORT: '0', SYMBOLS: 'SOL', ...env },
    stdout: true,
  });
  const deadline = Date.now() + 60_000;
  for (;;) {
    const line = proc
      .stdout()
      .split('\n')
      .find((l) => l.includes('"tradewire ready"'));
    if (line) {
      const ready = JSON.parse(line) as { api: string | null; ws: string | null };
      const url = role === 'api' ? ready.api : ready.ws;
      if (!url) throw new Error(`${role} role reported no URL: ${line}`);
      return { proc, url };
    }
    if (proc.child.exitCode !== null || Date.now() > deadline) {
      await proc.stop();
      throw new Error(`${role} role did not start:\n${proc.stdout().slice(-2000)}\n${proc.stderr().slice(-2000)}`);
    }
    await sleep(50);
  }
}

/**
 * The end-to-end scenario: the real API and gateway processes (the launcher, split roles) on
 * the benchmark's Redis and the seeded database, driven by the load generator.
 */
export async function runEndToEnd(options: EndToEndOptions): Promise<EndToEndResult> {
  // A price to trade at: the price worker is not running, so the benchmark sets one.
  const broker = await connectRedisBroker(options.redisUrl);
  try {
    await createPriceStore(broker).setPrice('SOL', '231.45');
  } finally {
    await broker.close();
  }
  // That one price must stay tradable for the whole run: orders at an older price than
  // MAX_PRICE_AGE_MS are rejected as stale.
  const env = { REDIS_URL: options.redisUrl, DATABASE_URL: options.databaseUrl, MAX_PRICE_AGE_MS: '86400000' };
  const generator = startGenerator(options.generatorCore);
  const roles: PinnedProcess[] = [];
  try {
    const api = await startRole('api', options.core, env);
    roles.push(api.proc);
    const ws = await startRole('ws', options.core, env);
    roles.push(ws.proc);
    const wsUrl = new URL(ws.url);
    const result = await generator.run<EndToEndClientResult>(
      {
        scenario: 'e2e',
        apiUrl: api.url,
        // No Origin header: a non-browser client, which the gateway's Origin check lets through.
        target: { protocol: 'json', host: wsUrl.hostname, port: Number(wsUrl.port), path: '/' },
        usersFile: options.usersFile,
        users: options.users,
        rate: options.rate,
        warmupS: options.warmupS,
        measureS: options.measureS,
      },
      { timeoutMs: 300_000 },
    );
    const { generator: _health, ...figures } = result;
    return figures;
  } finally {
    await generator.stop();
    for (const proc of roles.reverse()) await proc.stop();
  }
}
