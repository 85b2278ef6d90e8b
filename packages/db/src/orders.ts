import { and, asc, desc, eq, inArray, lt, sql } from 'drizzle-orm';
import type { DrizzleDb, DrizzleTx } from './drizzle.ts';
import { IdempotencyKeyReusedError, UnknownUserError, toDatabaseError } from './errors.ts';
import { canonical, canonicalOrNull } from './decimal.ts';
import { executeMarketOrder, type RejectReason, type Side } from './paper-trading.ts';
import { readHoldings, type BalanceView, type PositionView } from './portfolio.ts';
import { toSafeInteger } from './int64.ts';
import { balances, idempotencyKeys, orders, outbox, positions, users } from './schema.ts';

export interface PlaceOrderInput {
  userId: number;
  /** Base asset traded, e.g. "SOL". */
  symbol: string;
  /** Quote asset the price, cost and fee are in, e.g. "USD". */
  quoteAsset: string;
  side: Side;
  /** Canonical positive size (checked by the caller with `checkSize`). */
  size: string;
  /** Latest price, or null when none is known (the order is rejected with `no_price`). */
  price: string | null;
  /** True when that price is too old to trade at (the order is rejected with `price_stale`). */
  priceStale?: boolean;
  /** Fee rate, e.g. "0.0001". */
  feeRate: string;
  /**
   * The client's `Idempotency-Key` for this order: when the user already placed an order
   * with `key` at or after `notBefore`, that order is returned (`replayed`) and nothing is
   * executed; with a different `requestHash` the call throws `IdempotencyKeyReusedError`.
   */
  idempotency?: { key: string; requestHash: string; notBefore: Date };
}

/** One stored order, as GET /orders and POST /orders show it. */
export interface OrderRecord {
  orderId: number;
  userId: number;
  symbol: string;
  side: Side;
  requestedSize: string;
  status: 'filled' | 'rejected';
  executedPrice: string | null;
  executedSize: string | null;
  fee: string | null;
  reason: RejectReason | null;
  /** The `seq` of the order's event. */
  seq: number;
  /** ISO time of execution (also the events' timestamp). */
  timestamp: string;
}

export interface PlaceOrderResult {
  order: OrderRecord;
  /** The portfolio version after a fill, null after a rejection or a replay. */
  portfolioVersion: number | null;
  /** True when the idempotency key found an earlier order: this call executed nothing. */
  replayed: boolean;
}

export interface OrderPage {
  orders: OrderRecord[];
  /** Pass as `before` to read the next (older) page; null on the last page. */
  nextBefore: number | null;
  /** The user's latest order-event seq. */
  seq: number;
}

export interface OrdersRepository {
  /**
   * Executes a market order in one transaction: locks the user, the quote balance and the
   * base position (SELECT … FOR UPDATE), applies the paper-trading rules, stores the order
   * (filled or rejected), advances the user's order seq (and portfolio version on a fill) and
   * records the events in the outbox. Nothing is published here: the relay does that after
   * commit.
   */
  place(input: PlaceOrderInput): Promise<PlaceOrderResult>;
  /** The user's orders, newest first: at most `limit`, with ids below `before` when given. */
  list(userId: number, options: { limit: number; before?: number | null }): Promise<OrderPage>;
  /** Deletes up to `limit` idempotency keys created before `before`, oldest first; returns how many. */
  deleteIdempotencyKeys(before: Date, limit: number): Promise<number>;
}

export function createOrdersRepository(db: DrizzleDb, options: { now?: () => Date } = {}): OrdersRepository {
  const now = options.now ?? (() => new Date());
  return {
    async place(input) {
      try {
        return await db.transaction((tx) => placeInTransaction(tx, input, now));
      } catch (err) {
        throw toDatabaseError(err);
      }
    },

    async list(userId, { limit, before }) {
      try {
        const rows = await db
          .select()
          .from(orders)
          .where(before ? and(eq(orders.userId, userId), lt(orders.id, before)) : eq(orders.userId, userId))
          .orderBy(desc(orders.id))
          .limit(limit + 1);
        const [user] = await db.select({ seq: users.orderSeq }).from(users).where(eq(users.id, userId));
        const page = rows.slice(0, limit).map(toRecord);
        return {
          orders: page,
          nextBefore: rows.length > limit ? page[page.length - 1]!.orderId : null,
          seq: user?.seq ?? 0,
        };
      } catch (err) {
        throw toDatabaseError(err);
      }
    },

    async deleteIdempotencyKeys(before, limit) {
      try {
        const doomed = db
          .select({ userId: idempotencyKeys.userId, key: idempotencyKeys.key })
          .from(idempotencyKeys)
          .where(lt(idempotencyKeys.createdAt, before))
          .orderBy(asc(idempotencyKeys.createdAt))
          .limit(limit);
        const deleted = await db
          .delete(idempotencyKeys)
          .where(inArray(sql`(${idempotencyKeys.userId}, ${idempotencyKeys.key})`, doomed))
          .returning({ key: idempotencyKeys.key });
        return deleted.length;
      } catch (err) {
        throw toDatabaseError(err);
      }
    },
  };
}

/**
 * The order transaction in four statements (plus BEGIN and COMMIT): every round trip to the
 * database is spent while the user's rows are locked, so their number sets how many orders a
 * user, and the pool, can run per second.
 *
 * 1. Lock the user, the quote balance and the base position in one SELECT … FOR UPDATE (rows
 *    of a join are locked table by table in FROM order: user → balance → position, the order
 *    every path takes). After waiting for a lock, PostgreSQL re-reads the locked rows at
 *    their latest version, so the balance and counters are current.
 * 2. After a fill only: read the user's holdings for the portfolio event; a statement of its
 *    own because only a snapshot taken after the locks sees the user's other assets as the
 *    previous order left them.
 * 3. Write everything in one statement: balance, position and counters, the order, and its
 *    outbox rows (the order event gets its order id from the insert).
 *
 * Returns null when the balance or position row is missing (or the user is unknown): the
 * statement-by-statement path handles those.
 */
async function placeInTransaction(tx: DrizzleTx, input: PlaceOrderInput, now: () => Date): Promise<PlaceOrderResult> {
  const { userId, symbol, quoteAsset } = input;
  const locked = rowsOf(
    await tx.execute(sql`
      select u.order_seq::text as seq, u.portfolio_version::text as version, b.available::text as available,
             p.size::text as size, p.avg_entry_price::text as avg
        from users u
        join balances b on b.user_id = u.id and b.asset = ${quoteAsset}
        join positions p on p.user_id = u.id and p.asset = ${symbol}
       where u.id = ${userId}
         for update`),
  )[0];
  if (!locked) return placeStepByStep(tx, input, now);

  const replay = await checkIdempotencyKey(tx, userId, input.idempotency);
  if (replay) return replay;

  const outcome = executeMarketOrder({
    side: input.side,
    size: input.size,
    price: input.price,
    priceStale: input.priceStale,
    feeRate: input.feeRate,
    quoteAvailable: String(locked.available),
    position: { size: String(locked.size), avgEntryPrice: String(locked.avg) },
  });
  const filled = outcome.status === 'filled';
  const seq = toSafeInteger(locked.seq) + 1;
  const version = toSafeInteger(locked.version) + (filled ? 1 : 0);
  // Taken after the locks so that timestamps follow seq order.
  const executedAt = now();
  const timestamp = executedAt.toISOString();
  const orderFields = { userId, side: input.side, baseAsset: symbol, quoteAsset };

  let written: Record<string, unknown>[];
  if (filled) {
    const holdings = await readHoldingsAfter(tx, userId, quoteAsset, outcome.quoteAvailable, symbol, outcome.position);
    const orderEvent = {
      ...orderFields,
      executedPrice: outcome.executedPrice,
      executedSize: outcome.executedSize,
      fee: outcome.fee,
      timestamp,
      seq,
    };
    const portfolioEvent = { userId, ...holdings, timestamp, version, orderSeq: seq };
    written = rowsOf(
      await tx.execute(sql`
        with b as (
          update balances set available = ${outcome.quoteAvailable}
           where user_id = ${userId} and asset = ${quoteAsset}),
        p as (
          update positions set size = ${outcome.position.size}, avg_entry_price = ${outcome.position.avgEntryPrice}
           where user_id = ${userId} and asset = ${symbol}),
        u as (
          update users set order_seq = ${seq}, portfolio_version = ${version} where id = ${userId}),
        o as (
          insert into orders (user_id, symbol, side, requested_size, status, executed_price, executed_size, fee,
                              seq, created_at)
          values (${userId}, ${symbol}, ${input.side}, ${input.size}, 'filled', ${outcome.executedPrice},
                  ${outcome.executedSize}, ${outcome.fee}, ${seq}, ${timestamp}::timestamptz)
          returning id),
        e as (
          insert into outbox (user_id, kind, position, payload)
          select ${userId}::bigint, 'order_filled', ${seq}::bigint,
                 jsonb_set(${JSON.stringify(orderEvent)}::jsonb, '{orderId}', to_jsonb(o.id))
            from o
          union all
          select ${userId}::bigint, 'portfolio', ${version}::bigint, ${JSON.stringify(portfolioEvent)}::jsonb)
        select id::text as id from o`),
    );
  } else {
    const rejectedEvent = { ...orderFields, requestedSize: input.size, reason: outcome.reason, timestamp, seq };
    written = rowsOf(
      await tx.execute(sql`
        with u as (update users set order_seq = ${seq} where id = ${userId}),
        o as (
          insert into orders (user_id, symbol, side, requested_size, status, reason, seq, created_at)
          values (${userId}, ${symbol}, ${input.side}, ${input.size}, 'rejected', ${outcome.reason}, ${seq},
                  ${timestamp}::timestamptz)
          returning id),
        e as (
          insert into outbox (user_id, kind, position, payload)
          select ${userId}::bigint, 'order_rejected', ${seq}::bigint,
                 jsonb_set(${JSON.stringify(rejectedEvent)}::jsonb, '{orderId}', to_jsonb(o.id))
            from o)
        select id::text as id from o`),
    );
  }
  const orderId = toSafeInteger(written[0]!.id);
  if (input.idempotency) await storeIdempotencyKey(tx, userId, input.idempotency, orderId, executedAt);
  const order: OrderRecord = {
    orderId,
    userId,
    symbol,
    side: input.side,
    requestedSize: canonical(input.size),
    status: outcome.status,
    executedPrice: filled ? outcome.executedPrice : null,
    executedSize: filled ? outcome.executedSize : null,
    fee: filled ? outcome.fee : null,
    reason: filled ? null : outcome.reason,
    seq,
    timestamp,
  };
  return { order, portfolioVersion: filled ? version : null, replayed: false };
}

/**
 * The user's balances and positions (by asset, canonical decimals) as they are once this
 * order's new quote balance and base position are written, in one statement.
 */
async function readHoldingsAfter(
  tx: DrizzleTx,
  userId: number,
  quoteAsset: string,
  quoteAvailable: string,
  symbol: string,
  position: { size: string; avgEntryPrice: string },
): Promise<{ balances: BalanceView[]; positions: PositionView[] }> {
  const rows = rowsOf(
    await tx.execute(sql`
      select 'b' as kind, asset, available::text as a, locked::text as b from balances where user_id = ${userId}
      union all
      select 'p' as kind, asset, size::text as a, avg_entry_price::text as b from positions where user_id = ${userId}
      order by kind, asset`),
  );
  const holdings: { balances: BalanceView[]; positions: PositionView[] } = { balances: [], positions: [] };
  for (const row of rows) {
    const asset = String(row.asset);
    if (row.kind === 'b') {
      const available = asset === quoteAsset ? quoteAvailable : canonical(String(row.a));
      holdings.balances.push({ asset, available, locked: canonical(String(row.b)) });
    } else if (asset === symbol) holdings.positions.push({ asset, ...position });
    else holdings.positions.push({ asset, size: canonical(String(row.a)), avgEntryPrice: canonical(String(row.b)) });
  }
  return holdings;
}

/**
 * Under the user's lock, so a concurrent request with the same key (from any API process)
 * waits for it and then sees this one's committed key; the primary key backs that up.
 * Returns the first order when the key was already used within its lifetime.
 */
async function checkIdempotencyKey(
  tx: DrizzleTx,
  userId: number,
  idempotency: PlaceOrderInput['idempotency'],
): Promise<PlaceOrderResult | null> {
  if (!idempotency) return null;
  const keyOfUser = and(eq(idempotencyKeys.userId, userId), eq(idempotencyKeys.key, idempotency.key));
  const [existing] = await tx.select().from(idempotencyKeys).where(keyOfUser);
  if (existing && existing.createdAt >= idempotency.notBefore) {
    if (existing.requestHash !== idempotency.requestHash) throw new IdempotencyKeyReusedError();
    const [first] = await tx.select().from(orders).where(eq(orders.id, existing.orderId));
    return { order: toRecord(first!), portfolioVersion: null, replayed: true };
  }
  // Past its lifetime: the key is free again.
  if (existing) await tx.delete(idempotencyKeys).where(keyOfUser);
  return null;
}

async function storeIdempotencyKey(
  tx: DrizzleTx,
  userId: number,
  idempotency: NonNullable<PlaceOrderInput['idempotency']>,
  orderId: number,
  createdAt: Date,
): Promise<void> {
  await tx.insert(idempotencyKeys).values({
    userId,
    key: idempotency.key,
    requestHash: idempotency.requestHash,
    orderId,
    createdAt,
  });
}

/** The rows of a raw `execute`, from either driver (node-postgres and PGlite both answer `{ rows }`). */
function rowsOf(result: unknown): Record<string, unknown>[] {
  return (result as { rows: Record<string, unknown>[] }).rows;
}

/**
 * The order transaction statement by statement: the path for a user whose quote balance or
 * base position row does not exist yet (an asset added to the configuration after the user
 * registered), which it opens empty.
 */
async function placeStepByStep(tx: DrizzleTx, input: PlaceOrderInput, now: () => Date): Promise<PlaceOrderResult> {
  const { userId, symbol, quoteAsset } = input;
  // Lock order is always user → balance → position, so concurrent orders queue instead of
  // deadlocking. The user lock alone serialises a user's orders, which also keeps `seq` in
  // commit order.
  const [user] = await tx.select({ id: users.id }).from(users).where(eq(users.id, userId)).for('update');
  if (!user) throw new UnknownUserError(userId);

  const replay = await checkIdempotencyKey(tx, userId, input.idempotency);
  if (replay) return replay;
  const idempotency = input.idempotency;

  const quote = await lockBalance(tx, userId, quoteAsset);
  const base = await lockPosition(tx, userId, symbol);

  const outcome = executeMarketOrder({
    side: input.side,
    size: input.size,
    price: input.price,
    priceStale: input.priceStale,
    feeRate: input.feeRate,
    quoteAvailable: quote.available,
    position: base,
  });
  const filled = outcome.status === 'filled';

  if (filled) {
    await tx
      .update(balances)
      .set({ available: outcome.quoteAvailable })
      .where(and(eq(balances.userId, userId), eq(balances.asset, quoteAsset)));
    await tx
      .update(positions)
      .set({ size: outcome.position.size, avgEntryPrice: outcome.position.avgEntryPrice })
      .where(and(eq(positions.userId, userId), eq(positions.asset, symbol)));
  }

  const [counters] = await tx
    .update(users)
    .set({
      orderSeq: sql`${users.orderSeq} + 1`,
      portfolioVersion: filled ? sql`${users.portfolioVersion} + 1` : users.portfolioVersion,
    })
    .where(eq(users.id, userId))
    .returning({ seq: users.orderSeq, version: users.portfolioVersion });
  const { seq, version } = counters!;

  // Taken after the locks so that timestamps follow seq order.
  const executedAt = now();
  const timestamp = executedAt.toISOString();
  const [row] = await tx
    .insert(orders)
    .values({
      userId,
      symbol,
      side: input.side,
      requestedSize: input.size,
      status: outcome.status,
      executedPrice: filled ? outcome.executedPrice : null,
      executedSize: filled ? outcome.executedSize : null,
      fee: filled ? outcome.fee : null,
      reason: filled ? null : outcome.reason,
      seq,
      createdAt: executedAt,
    })
    .returning();
  const order = toRecord(row!);

  // The events, exactly as they will be published (shapes of @repo/events).
  const orderFields = { userId, orderId: order.orderId, side: input.side, baseAsset: symbol, quoteAsset };
  if (filled) {
    await tx.insert(outbox).values({
      userId,
      kind: 'order_filled',
      position: seq,
      payload: {
        ...orderFields,
        executedPrice: outcome.executedPrice,
        executedSize: outcome.executedSize,
        fee: outcome.fee,
        timestamp,
        seq,
      },
    });
    const holdings = await readHoldings(tx, userId);
    await tx.insert(outbox).values({
      userId,
      kind: 'portfolio',
      position: version,
      payload: {
        userId,
        balances: holdings.balances,
        positions: holdings.positions,
        timestamp,
        version,
        orderSeq: seq,
      },
    });
  } else {
    await tx.insert(outbox).values({
      userId,
      kind: 'order_rejected',
      position: seq,
      payload: { ...orderFields, requestedSize: input.size, reason: outcome.reason, timestamp, seq },
    });
  }
  if (idempotency) await storeIdempotencyKey(tx, userId, idempotency, order.orderId, executedAt);
  return { order, portfolioVersion: filled ? version : null, replayed: false };
}

async function lockBalance(tx: DrizzleTx, userId: number, asset: string): Promise<{ available: string }> {
  const where = and(eq(balances.userId, userId), eq(balances.asset, asset));
  const [row] = await tx.select({ available: balances.available }).from(balances).where(where).for('update');
  if (row) return row;
  // An asset added to the configuration after the user registered: open it empty. Safe
  // without ON CONFLICT because the user row lock is held.
  await tx.insert(balances).values({ userId, asset });
  return { available: '0' };
}

async function lockPosition(
  tx: DrizzleTx,
  userId: number,
  asset: string,
): Promise<{ size: string; avgEntryPrice: string }> {
  const where = and(eq(positions.userId, userId), eq(positions.asset, asset));
  const [row] = await tx
    .select({ size: positions.size, avgEntryPrice: positions.avgEntryPrice })
    .from(positions)
    .where(where)
    .for('update');
  if (row) return row;
  await tx.insert(positions).values({ userId, asset });
  return { size: '0', avgEntryPrice: '0' };
}

function toRecord(row: typeof orders.$inferSelect): OrderRecord {
  return {
    orderId: row.id,
    userId: row.userId,
    symbol: row.symbol,
    side: row.side,
    requestedSize: canonical(row.requestedSize),
    status: row.status,
    executedPrice: canonicalOrNull(row.executedPrice),
    executedSize: canonicalOrNull(row.executedSize),
    fee: canonicalOrNull(row.fee),
    reason: row.reason as RejectReason | null,
    seq: row.seq,
    timestamp: row.createdAt.toISOString(),
  };
}
