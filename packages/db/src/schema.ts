import { sql } from 'drizzle-orm';
import { check, index, jsonb, numeric, pgTable, primaryKey, text, timestamp, uuid } from 'drizzle-orm/pg-core';
import { bigserialId, int64 } from './int64.ts';

/**
 * The one schema of tradewire, for PostgreSQL and embedded PGlite alike. Migrations in
 * `../migrations` are generated from it with `npx drizzle-kit generate` (see README of this
 * package) and applied at open.
 *
 * Money and sizes are `numeric` without a fixed scale: Postgres keeps them exact, the
 * application rounds (see `decimal.ts`) and CHECK constraints make a negative balance or
 * position impossible even if application code were wrong.
 *
 * Ids and per-user counters are 64-bit (`int64.ts`): a 32-bit order id runs out after about
 * two billion orders, which order spam alone could reach.
 */

const createdAt = () => timestamp('created_at', { withTimezone: true, mode: 'date' }).notNull().defaultNow();

export const users = pgTable('users', {
  id: bigserialId('id').primaryKey(),
  username: text('username').notNull().unique(),
  passwordHash: text('password_hash').notNull(),
  createdAt: createdAt(),
  /** Sequence number of the user's last order event (`seq` of order_filled/order_rejected). */
  orderSeq: int64('order_seq').notNull().default(0),
  /** Version of the user's last portfolio event. */
  portfolioVersion: int64('portfolio_version').notNull().default(0),
});

export const sessions = pgTable(
  'sessions',
  {
    id: uuid('id').primaryKey(),
    userId: int64('user_id')
      .notNull()
      .references(() => users.id),
    /** Hex SHA-256 of the bearer token; the token itself is never stored. */
    tokenHash: text('token_hash').notNull().unique(),
    createdAt: createdAt(),
    expiresAt: timestamp('expires_at', { withTimezone: true, mode: 'date' }).notNull(),
    revokedAt: timestamp('revoked_at', { withTimezone: true, mode: 'date' }),
  },
  (t) => [
    index('sessions_user_id_idx').on(t.userId),
    // Housekeeping deletes sessions past their expiry, oldest first.
    index('sessions_expires_at_idx').on(t.expiresAt),
  ],
);

export const balances = pgTable(
  'balances',
  {
    userId: int64('user_id')
      .notNull()
      .references(() => users.id),
    asset: text('asset').notNull(),
    available: numeric('available').notNull().default('0'),
    locked: numeric('locked').notNull().default('0'),
  },
  (t) => [
    primaryKey({ columns: [t.userId, t.asset] }),
    check('balances_available_non_negative', sql`${t.available} >= 0`),
    check('balances_locked_non_negative', sql`${t.locked} >= 0`),
  ],
);

export const positions = pgTable(
  'positions',
  {
    userId: int64('user_id')
      .notNull()
      .references(() => users.id),
    asset: text('asset').notNull(),
    size: numeric('size').notNull().default('0'),
    avgEntryPrice: numeric('avg_entry_price').notNull().default('0'),
  },
  (t) => [
    primaryKey({ columns: [t.userId, t.asset] }),
    check('positions_size_non_negative', sql`${t.size} >= 0`),
    check('positions_avg_entry_price_non_negative', sql`${t.avgEntryPrice} >= 0`),
  ],
);

export const orders = pgTable(
  'orders',
  {
    id: bigserialId('id').primaryKey(),
    userId: int64('user_id')
      .notNull()
      .references(() => users.id),
    symbol: text('symbol').notNull(),
    side: text('side', { enum: ['buy', 'sell'] }).notNull(),
    requestedSize: numeric('requested_size').notNull(),
    status: text('status', { enum: ['filled', 'rejected'] }).notNull(),
    executedPrice: numeric('executed_price'),
    executedSize: numeric('executed_size'),
    fee: numeric('fee'),
    reason: text('reason'),
    /** The `seq` of this order's event (order_filled or order_rejected). */
    seq: int64('seq').notNull(),
    createdAt: createdAt(),
  },
  (t) => [
    // GET /orders reads a user's orders newest first, page by page.
    index('orders_user_id_id_idx').on(t.userId, t.id.desc()),
    check('orders_side_valid', sql`${t.side} in ('buy', 'sell')`),
    check('orders_status_valid', sql`${t.status} in ('filled', 'rejected')`),
    check('orders_requested_size_positive', sql`${t.requestedSize} > 0`),
  ],
);

const OUTBOX_KINDS = ['order_filled', 'order_rejected', 'portfolio', 'session_revoked'] as const;
export type OutboxKind = (typeof OUTBOX_KINDS)[number];

export const outbox = pgTable(
  'outbox',
  {
    id: bigserialId('id').primaryKey(),
    userId: int64('user_id')
      .notNull()
      .references(() => users.id),
    kind: text('kind', { enum: OUTBOX_KINDS }).notNull(),
    /** `seq` for order events, `version` for portfolio events, null for session revocations. */
    position: int64('position'),
    /** The event exactly as it is published (JSON), timestamp included. */
    payload: jsonb('payload').notNull(),
    createdAt: createdAt(),
    publishedAt: timestamp('published_at', { withTimezone: true, mode: 'date' }),
  },
  (t) => [
    // The relay reads only unpublished rows, in id order; the partial index keeps that cheap
    // however long the published history grows.
    index('outbox_unpublished_idx')
      .on(t.id)
      .where(sql`${t.publishedAt} is null`),
    // A gateway replays a user's order events after a `since`: served by this index
    // however many users and portfolio rows the table holds.
    index('outbox_order_history_idx')
      .on(t.userId, t.position)
      .where(sql`${t.kind} in ('order_filled', 'order_rejected')`),
    check('outbox_kind_valid', sql`${t.kind} in ('order_filled', 'order_rejected', 'portfolio', 'session_revoked')`),
  ],
);

/**
 * `Idempotency-Key`s of executed orders: the key of a retried `POST /orders` finds the order
 * its first attempt placed instead of placing another. The primary key makes the database
 * the arbiter between concurrent attempts, in one API process or several.
 */
export const idempotencyKeys = pgTable(
  'idempotency_keys',
  {
    userId: int64('user_id')
      .notNull()
      .references(() => users.id),
    key: text('key').notNull(),
    /** SHA-256 of the order the key was first used for (symbol, side, canonical size). */
    requestHash: text('request_hash').notNull(),
    orderId: int64('order_id')
      .notNull()
      .references(() => orders.id),
    createdAt: createdAt(),
  },
  (t) => [
    primaryKey({ columns: [t.userId, t.key] }),
    // Housekeeping deletes keys past their 24 hours, oldest first.
    index('idempotency_keys_created_at_idx').on(t.createdAt),
  ],
);

/** Candle intervals kept, by name; their lengths are in `candles.ts`. */
export const CANDLE_INTERVALS = ['1s', '1m', '1h'] as const;
export type CandleInterval = (typeof CANDLE_INTERVALS)[number];

/**
 * OHLC candles of every symbol's price at each interval, aggregated from the published ticks by
 * the one candle writer (see docs/price-worker.md). `open_time_ms` is the candle's open time in
 * milliseconds since the epoch, a multiple of the interval (UTC boundaries).
 */
export const candles = pgTable(
  'candles',
  {
    symbol: text('symbol').notNull(),
    interval: text('interval', { enum: CANDLE_INTERVALS }).notNull(),
    openTimeMs: int64('open_time_ms').notNull(),
    open: numeric('open').notNull(),
    high: numeric('high').notNull(),
    low: numeric('low').notNull(),
    close: numeric('close').notNull(),
  },
  (t) => [
    // GET /candles reads one symbol's interval newest first from a time, page by page.
    primaryKey({ columns: [t.symbol, t.interval, t.openTimeMs] }),
    // Retention deletes one interval's oldest candles across symbols.
    index('candles_interval_open_time_idx').on(t.interval, t.openTimeMs),
    check('candles_interval_valid', sql`${t.interval} in ('1s', '1m', '1h')`),
    check('candles_low_bounds', sql`${t.low} > 0 and ${t.low} <= least(${t.open}, ${t.close})`),
    check('candles_high_bounds', sql`${t.high} >= greatest(${t.open}, ${t.close})`),
  ],
);
