import { sql } from 'drizzle-orm';
import {
  bigserial,
  check,
  index,
  integer,
  jsonb,
  numeric,
  pgTable,
  primaryKey,
  serial,
  text,
  timestamp,
  uuid,
} from 'drizzle-orm/pg-core';

/**
 * The one schema of tradewire, for PostgreSQL and embedded PGlite alike. Migrations in
 * `../migrations` are generated from it with `npx drizzle-kit generate` (see README of this
 * package) and applied at open.
 *
 * Money and sizes are `numeric` without a fixed scale: Postgres keeps them exact, the
 * application rounds (see `decimal.ts`) and CHECK constraints make a negative balance or
 * position impossible even if application code were wrong.
 */

const createdAt = () => timestamp('created_at', { withTimezone: true, mode: 'date' }).notNull().defaultNow();

export const users = pgTable('users', {
  id: serial('id').primaryKey(),
  username: text('username').notNull().unique(),
  passwordHash: text('password_hash').notNull(),
  createdAt: createdAt(),
  /** Sequence number of the user's last order event (`seq` of order_filled/order_rejected). */
  orderSeq: integer('order_seq').notNull().default(0),
  /** Version of the user's last portfolio event. */
  portfolioVersion: integer('portfolio_version').notNull().default(0),
});

export const sessions = pgTable(
  'sessions',
  {
    id: uuid('id').primaryKey(),
    userId: integer('user_id')
      .notNull()
      .references(() => users.id),
    /** Hex SHA-256 of the bearer token; the token itself is never stored. */
    tokenHash: text('token_hash').notNull().unique(),
    createdAt: createdAt(),
    expiresAt: timestamp('expires_at', { withTimezone: true, mode: 'date' }).notNull(),
    revokedAt: timestamp('revoked_at', { withTimezone: true, mode: 'date' }),
  },
  (t) => [index('sessions_user_id_idx').on(t.userId)],
);

export const balances = pgTable(
  'balances',
  {
    userId: integer('user_id')
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
    userId: integer('user_id')
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
    id: serial('id').primaryKey(),
    userId: integer('user_id')
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
    seq: integer('seq').notNull(),
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

export const OUTBOX_KINDS = ['order_filled', 'order_rejected', 'portfolio', 'session_revoked'] as const;
export type OutboxKind = (typeof OUTBOX_KINDS)[number];

export const outbox = pgTable(
  'outbox',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    userId: integer('user_id')
      .notNull()
      .references(() => users.id),
    kind: text('kind', { enum: OUTBOX_KINDS }).notNull(),
    /** `seq` for order events, `version` for portfolio events, null for session revocations. */
    position: integer('position'),
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
    // A gateway replays a user's order events after a `since` (issue 5): served by this index
    // however many users and portfolio rows the table holds.
    index('outbox_order_history_idx')
      .on(t.userId, t.position)
      .where(sql`${t.kind} in ('order_filled', 'order_rejected')`),
    check('outbox_kind_valid', sql`${t.kind} in ('order_filled', 'order_rejected', 'portfolio', 'session_revoked')`),
  ],
);
