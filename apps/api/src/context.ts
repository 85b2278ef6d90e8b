import type { Broker } from '@repo/broker';
import type { Database, PasswordHashParams } from '@repo/db';
import type { Logger } from '@repo/log';
import type { BearerAuth } from './bearer-auth.ts';
import type { ApiMetrics } from './metrics.ts';
import type { OutboxRelay } from './outbox-relay.ts';
import type { PasswordHashSlots } from './password-hash-slots.ts';
import type { PriceReader } from './price-reader.ts';
import type { RateLimits } from './rate-limits.ts';

/** The API's settings after defaults and validation. */
export interface ApiSettings {
  symbols: readonly string[];
  quoteAsset: string;
  feeRate: string;
  startingBalanceUsd: string;
  maxOrderSize: string;
  sessionTtlMs: number;
  maxPriceAgeMs: number;
  passwordHash: PasswordHashParams;
  publicConfig: { wsUrl: string | null; wsPort: number };
}

/** What route modules are handed: the dependencies, never module-level singletons. */
export interface ApiContext {
  db: Database;
  broker: Broker;
  logger: Logger;
  settings: ApiSettings;
  auth: BearerAuth;
  limits: RateLimits;
  passwordHashes: PasswordHashSlots;
  relay: OutboxRelay;
  prices: PriceReader;
  metrics: ApiMetrics;
  now: () => Date;
}
