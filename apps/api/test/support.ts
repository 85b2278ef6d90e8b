import { createPriceStore, type Broker } from '@repo/broker';
import type { Database } from '@repo/db';
import type { Logger } from '@repo/log';
import { createApi, type Api, type ApiOptions } from '../src/index.ts';

/** Cheap argon2id for tests: hashing cost is not what they check. */
export const TEST_PASSWORD_HASH = { memoryKiB: 1024, passes: 1, parallelism: 1 };

export function makeApi(db: Database, broker: Broker, options: Partial<ApiOptions> = {}): Api {
  return createApi({
    db,
    broker,
    passwordHash: TEST_PASSWORD_HASH,
    // Tests place orders and read candles faster than a person; the tests of those limits set
    // their own.
    rateLimits: {
      ordersPerUser: { max: 100_000, windowMs: 1000 },
      candlesPerAddress: { max: 100_000, windowMs: 1000 },
    },
    relay: { pollIntervalMs: 50, retryBaseMs: 20, retryMaxMs: 200 },
    // Suites set their prices once, and a loaded machine can take longer than the production
    // limit between that and an order; the staleness tests set their own limit and clock.
    maxPriceAgeMs: 600_000,
    ...options,
  });
}

let counter = 0;
/** A username no other test of this process uses. */
export function uniqueName(prefix = 'user'): string {
  return `${prefix}_${process.pid}_${++counter}`;
}

export async function register(
  api: Api,
  username = uniqueName(),
  password = 'password123',
): Promise<{ userId: number; token: string; username: string }> {
  const response = await api.app.inject({ method: 'POST', url: '/auth/register', payload: { username, password } });
  if (response.statusCode !== 201) throw new Error(`register failed: ${response.statusCode} ${response.body}`);
  const body = response.json<{ userId: number; token: string }>();
  return { ...body, username };
}

export function bearer(token: string) {
  return { authorization: `Bearer ${token}` };
}

export async function setPrice(broker: Broker, symbol: string, price: string): Promise<void> {
  await createPriceStore(broker).setPrice(symbol, price);
}

export interface LogLine {
  level: string;
  args: unknown[];
}

/** A logger that keeps every call, to check what reaches logs (and what never must). */
export function capturingLogger(): { logger: Logger; lines: LogLine[]; text: () => string } {
  const lines: LogLine[] = [];
  const make = (): Logger => {
    const at =
      (level: string) =>
      (...args: unknown[]) => {
        lines.push({ level, args });
      };
    return {
      info: at('info'),
      warn: at('warn'),
      error: at('error'),
      debug: at('debug'),
      child: () => make(),
    } as unknown as Logger;
  };
  return {
    logger: make(),
    lines,
    text: () =>
      JSON.stringify(
        lines.map((l) => l.args.map((a) => (a instanceof Error ? { message: a.message, stack: a.stack } : a))),
        (_key, value: unknown) => (value instanceof Error ? { message: value.message, stack: value.stack } : value),
      ),
  };
}
