import { connectRedisBroker, createPriceStore } from '@repo/broker';
import type { EndToEndClientResult } from '../load/end-to-end.ts';
import { startGenerator } from './generator.ts';
import { launchRoles } from './launch.ts';
import type { PinnedProcess } from './processes.ts';
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
  const env = {
    REDIS_URL: options.redisUrl,
    DATABASE_URL: options.databaseUrl,
    MAX_PRICE_AGE_MS: '86400000',
    SYMBOLS: 'SOL',
  };
  const generator = startGenerator(options.generatorCore);
  const roles: PinnedProcess[] = [];
  try {
    const api = await launchRoles(options.core, ['api'], env);
    roles.push(api.proc);
    const ws = await launchRoles(options.core, ['ws'], env);
    roles.push(ws.proc);
    if (!api.api || !ws.ws) throw new Error(`a role reported no URL: api ${api.api}, ws ${ws.ws}`);
    const wsUrl = new URL(ws.ws);
    const result = await generator.run<EndToEndClientResult>(
      {
        scenario: 'e2e',
        apiUrl: api.api,
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
