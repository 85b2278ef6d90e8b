import { and, asc, desc, eq, gt, inArray, isNull, lt, sql } from 'drizzle-orm';
import type { DrizzleDb, DrizzleTx } from './drizzle.ts';
import { IdempotencyKeyReusedError, SessionNotActiveError, UnknownUserError, toDatabaseError } from './errors.ts';
import { canonical, canonicalOrNull } from './decimal.ts';
import { executeMarketOrder, type MarketOrderOutcome, type RejectReason, type Side } from './paper-trading.ts';
import { readHoldings, type BalanceView, type PositionView } from './portfolio.ts';
import { toSafeInteger } from './int64.ts';
import type { OutboxEvent } from './outbox.ts';
import { balances, idempotencyKeys, orders, outbox, positions, sessions, users } from './schema.ts';
import { batchedStatement, runMany, type BatchedQuery } from './statement-batches.ts';
import { statement, type Query, type Row, type StatementRunner } from './statements.ts';

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
  /**
   * The last moment the price may be traded at (its timestamp plus the largest price age the
   * caller accepts). Judged when the order executes, after its reads or locks: an order that
   * waited for a connection or for its user's lock past it is rejected with `price_stale`,
   * though the price was fresh when the order arrived.
   */
  priceValidUntil?: Date;
  /** Fee rate, e.g. "0.0001". */
  feeRate: string;
  /**
   * The client's `Idempotency-Key` for this order: when the user already placed an order
   * with `key` at or after `notBefore`, that order is returned (`replayed`) and nothing is
   * executed; with a different `requestHash` the call throws `IdempotencyKeyReusedError`.
   */
  idempotency?: { key: string; requestHash: string; notBefore: Date };
  /**
   * The user's session the order is placed under: the order is executed only while that session
   * is active at `at` (neither revoked nor expired), as seen by the statements that read and
   * write the order, so a caller may take the session from a cache and a logout still stops the
   * next order. Otherwise the call throws `SessionNotActiveError`, having written nothing. Null
   * only for callers with no session (tests, tools): it is never optional by omission.
   */
  session: { id: string; at: Date } | null;
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
  /**
   * The events this call recorded in the outbox, committed, with their outbox ids, in id order
   * (empty for a replay): the API hands them to its relay, which publishes them without reading
   * them back.
   */
  events: OutboxEvent[];
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
   * Executes a market order atomically: applies the paper-trading rules to the user's quote
   * balance and base position, stores the order (filled or rejected), advances the user's
   * order seq (and portfolio version on a fill) and records the events in the outbox. Usually
   * one read and one guarded write (no lock held between them); a concurrent order of the same
   * user sends it to a transaction that locks the user's rows. Nothing is published here: the
   * relay does that after commit.
   */
  place(input: PlaceOrderInput): Promise<PlaceOrderResult>;
  /** The user's orders, newest first: at most `limit`, with ids below `before` when given. */
  list(userId: number, options: { limit: number; before?: number | null }): Promise<OrderPage>;
  /** Deletes up to `limit` idempotency keys created before `before`, oldest first; returns how many. */
  deleteIdempotencyKeys(before: Date, limit: number): Promise<number>;
}

/** Connections the batched order statements use at most: one per kind (read, fill, rejection). */
export const ORDER_BATCH_CONNECTIONS = 3;

export function createOrdersRepository(
  db: DrizzleDb,
  statements: StatementRunner,
  options: {
    now?: () => Date;
    /** Where the batched statements run (default `statements`): on PostgreSQL, a pool of their own. */
    batch?: StatementRunner;
  } = {},
): OrdersRepository {
  const now = options.now ?? (() => new Date());
  // The optimistic path's two statements are group-committed across users (statement-batches.ts),
  // one statement of each kind at a time: the orders that arrive while it runs make the next
  // batch. With two or four at a time the batches were smaller and the ladder's knee and
  // sustained rate lower (docs/benchmarks.md); one statement of up to 64 orders is still far
  // beyond what one API process sends. Three kinds, one of each: ORDER_BATCH_CONNECTIONS.
  const batch = { maxBatch: 64, maxInFlight: 1 };
  const batchRunner = options.batch ?? statements;
  const user = (values: readonly unknown[]) => values[0];
  const batched: OrderStatements = {
    snapshot: batchedStatement(batchRunner.query, SNAPSHOT, batch),
    fill: batchedStatement(batchRunner.query, WRITE_FILL, { ...batch, keyOf: user }),
    reject: batchedStatement(batchRunner.query, WRITE_REJECT, { ...batch, keyOf: user }),
  };
  return {
    async place(input) {
      try {
        return (
          (await placeOptimistically(statements.query, batched, input, now)) ??
          (await statements.transaction((query) => placeLocked(query, input, now))) ??
          (await db.transaction((tx) => placeStepByStep(tx, input, now)))
        );
      } catch (err) {
        throw toDatabaseError(err);
      }
    },

    async list(userId, { limit, before }) {
      try {
        // The seq and the page from one moment: a client subscribes with `since` = seq, and an
        // order committed between two separate reads (another tab's) would be in neither the
        // page nor the replay. Holding the user row FOR SHARE makes an order of this user wait
        // until both are read (as portfolio.get does).
        return await db.transaction(async (tx) => {
          const [user] = await tx.select({ seq: users.orderSeq }).from(users).where(eq(users.id, userId)).for('share');
          const rows = await tx
            .select()
            .from(orders)
            .where(before ? and(eq(orders.userId, userId), lt(orders.id, before)) : eq(orders.userId, userId))
            .orderBy(desc(orders.id))
            .limit(limit + 1);
          const page = rows.slice(0, limit).map(toRecord);
          return {
            orders: page,
            nextBefore: rows.length > limit ? page[page.length - 1]!.orderId : null,
            seq: user?.seq ?? 0,
          };
        });
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

/** The batch's users that no other transaction holds, locked in id order (see WRITE_FILL). */
const LOCK_FREE_USERS = 'select id from users where id = any($1::bigint[]) order by id for no key update skip locked';

/** The order path's statements, batched across users (the optimistic path) or run alone. */
interface OrderStatements {
  snapshot: BatchedQuery;
  fill: BatchedQuery;
  reject: BatchedQuery;
}

/** The order writes run alone on `query` (the locked path's transaction). */
function writesOn(query: Query): Pick<OrderStatements, 'fill' | 'reject'> {
  return {
    fill: (values) => runMany(query, WRITE_FILL, [values]),
    reject: (values) => runMany(query, WRITE_REJECT, [values]),
  };
}

/**
 * No session, or the session `session_id` of user `user_id` is neither revoked nor expired at
 * `session_at` (columns of the batch's rows `rows`).
 */
function sessionActiveFor(rows: string): string {
  return `(${rows}.session_id is null
           or exists (select from sessions s
                       where s.id = ${rows}.session_id and s.user_id = ${rows}.user_id
                         and s.revoked_at is null and s.expires_at > ${rows}.session_at))`;
}

const LOCK = statement(
  'orders_lock',
  `select u.order_seq::text as seq, u.portfolio_version::text as version, b.available::text as available,
          p.size::text as size, p.avg_entry_price::text as avg
     from users u
     join balances b on b.user_id = u.id and b.asset = $2
     join positions p on p.user_id = u.id and p.asset = $3
    where u.id = $1
      for no key update`,
);

const HOLDINGS = statement(
  'orders_holdings',
  `select 'b' as kind, asset, available::text as a, locked::text as b from balances where user_id = $1
   union all
   select 'p' as kind, asset, size::text as a, avg_entry_price::text as b from positions where user_id = $1
   order by kind, asset`,
);

// Both writes apply only while the user's `order_seq` is still the one the order was computed
// from (`seq - 1`): `u` updates the user row only then (on the row's latest version, which `l`
// below has locked: a write committed since the statement began is seen), and everything else
// hangs off `u`, so a stale order writes nothing and answers no row. Every change to a
// user's balances and positions advances `order_seq`, so an unchanged seq means unchanged
// holdings. The idempotency key (null for none) is stored with the order. With a session
// (null for none) the user row is updated only while that session is active, so an order
// whose session was revoked after it was read writes nothing either.
//
// Batched (statement-batches.ts): every parameter is an array with one element per order, at
// most one order per user, and each written order answers its position `i` and its id, once
// per outbox row it recorded (with the row's id and kind: the relay publishes those events
// as handed over, without reading them back). The outbox rows are stamped with the insert's
// own time (`clock_timestamp()`, after any wait for a lock), which the relay's grace for
// another process's rows counts from. The `= any($n)` conditions beside the joins let the
// planner find the rows through their primary keys at any table size (joined with the
// unnested arrays alone, small tables were scanned whole).
//
// `l` first locks the batch's users that nobody else holds, in id order, and skips the
// others: a user row held by another transaction (an order of that user on the locked path,
// `orders.list` or `portfolio.get` reading it FOR SHARE, another process's batch) would
// otherwise stall every order of the batch, and with one batch at a time every order of the
// process, until that transaction ends. A skipped user's order writes nothing and answers no
// row, like a stale one, and goes to the locked path, which waits for its own user only.
// Two processes' batches never wait for each other, so they cannot deadlock.
//
// $1 user, $2 quote asset, $3 symbol, $4 side, $5 requested size, $6 seq, $7 version,
// $8 quote available, $9 position size, $10 average entry price, $11 executed price,
// $12 executed size, $13 fee, $14 timestamp, $15 order event, $16 portfolio event,
// $17 idempotency key, $18 its request hash, $19 session, $20 the time it must be active at.
const WRITE_FILL = statement(
  'orders_write_fill',
  `with v as (
     select * from unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::numeric[], $6::bigint[],
                          $7::bigint[], $8::numeric[], $9::numeric[], $10::numeric[], $11::numeric[],
                          $12::numeric[], $13::numeric[], $14::timestamptz[], $15::jsonb[], $16::jsonb[],
                          $17::text[], $18::text[], $19::uuid[], $20::timestamptz[])
       with ordinality as v(user_id, quote_asset, symbol, side, size, seq, version, available, position_size,
                            avg_entry_price, executed_price, executed_size, fee, at, order_event,
                            portfolio_event, key, request_hash, session_id, session_at, i)
      order by user_id),
   l as materialized (${LOCK_FREE_USERS}),
   u as (
     update users set order_seq = v.seq, portfolio_version = v.version
       from v join l on l.id = v.user_id
      where users.id = any($1::bigint[]) and users.id = l.id and users.order_seq = v.seq - 1
        and ${sessionActiveFor('v')}
     returning v.*, nextval('orders_id_seq') as order_id),
   b as (
     update balances set available = u.available
       from u where balances.user_id = any($1::bigint[]) and balances.asset = any($2::text[])
                and balances.user_id = u.user_id and balances.asset = u.quote_asset),
   p as (
     update positions set size = u.position_size, avg_entry_price = u.avg_entry_price
       from u where positions.user_id = any($1::bigint[]) and positions.asset = any($3::text[])
                and positions.user_id = u.user_id and positions.asset = u.symbol),
   o as (
     insert into orders (id, user_id, symbol, side, requested_size, status, executed_price, executed_size, fee,
                         seq, created_at)
     select order_id, user_id, symbol, side, size, 'filled', executed_price, executed_size, fee, seq, at from u),
   e as (
     insert into outbox (user_id, kind, position, payload, created_at)
     select user_id, 'order_filled', seq, jsonb_set(order_event, '{orderId}', to_jsonb(order_id)), clock_timestamp()
       from u
     union all
     select user_id, 'portfolio', version, portfolio_event, clock_timestamp() from u
     returning id, user_id, kind),
   k as (
     insert into idempotency_keys (user_id, key, request_hash, order_id, created_at)
     select user_id, key, request_hash, order_id, at from u where key is not null)
   select u.i::int as i, u.order_id::text as id, e.id::text as event_id, e.kind from u join e on e.user_id = u.user_id`,
);

// The same guards, batched the same way. $1 user, $2 symbol, $3 side, $4 requested size,
// $5 reason, $6 seq, $7 timestamp, $8 order event, $9 idempotency key, $10 its request hash,
// $11 session, $12 the time it must be active at.
const WRITE_REJECT = statement(
  'orders_write_reject',
  `with v as (
     select * from unnest($1::bigint[], $2::text[], $3::text[], $4::numeric[], $5::text[], $6::bigint[],
                          $7::timestamptz[], $8::jsonb[], $9::text[], $10::text[], $11::uuid[], $12::timestamptz[])
       with ordinality as v(user_id, symbol, side, size, reason, seq, at, order_event, key, request_hash,
                            session_id, session_at, i)
      order by user_id),
   l as materialized (${LOCK_FREE_USERS}),
   u as (
     update users set order_seq = v.seq
       from v join l on l.id = v.user_id
      where users.id = any($1::bigint[]) and users.id = l.id and users.order_seq = v.seq - 1
        and ${sessionActiveFor('v')}
     returning v.*, nextval('orders_id_seq') as order_id),
   o as (
     insert into orders (id, user_id, symbol, side, requested_size, status, reason, seq, created_at)
     select order_id, user_id, symbol, side, size, 'rejected', reason, seq, at from u),
   e as (
     insert into outbox (user_id, kind, position, payload, created_at)
     select user_id, 'order_rejected', seq, jsonb_set(order_event, '{orderId}', to_jsonb(order_id)), clock_timestamp()
       from u
     returning id, user_id, kind),
   k as (
     insert into idempotency_keys (user_id, key, request_hash, order_id, created_at)
     select user_id, key, request_hash, order_id, at from u where key is not null)
   select u.i::int as i, u.order_id::text as id, e.id::text as event_id, e.kind from u join e on e.user_id = u.user_id`,
);

// Everything an order reads, from one snapshot and without a lock: the user's counters ('u'),
// balances ('b'), positions ('p'), the row of the idempotency key ('k': its order id, request
// hash and whether it is still within its lifetime, created at or after the key's `notBefore`),
// and a row 's' when the order's session is active at its time. Batched like the writes
// (several orders of one user may share it: they read the same rows).
// $1 user, $2 idempotency key, $3 its notBefore, $4 session, $5 the time it must be active at.
const SNAPSHOT = statement(
  'orders_snapshot',
  `with r as materialized (
     select * from unnest($1::bigint[], $2::text[], $3::timestamptz[], $4::uuid[], $5::timestamptz[])
       with ordinality as r(user_id, key, not_before, session_id, session_at, i))
   select r.i::int as i, x.kind, x.asset, x.a, x.b
     from r cross join lateral (
       select 'u' as kind, null as asset, order_seq::text as a, portfolio_version::text as b
         from users where id = r.user_id
       union all
       select 'b', asset, available::text, locked::text from balances where user_id = r.user_id
       union all
       select 'p', asset, size::text, avg_entry_price::text from positions where user_id = r.user_id
       union all
       select 'k', order_id::text, request_hash, (created_at >= r.not_before)::text
         from idempotency_keys where user_id = r.user_id and key = r.key
       union all
       select 's', null, null, null where r.session_id is not null and ${sessionActiveFor('r')}) x
   order by 1, 2, 3`,
);

// The locked path's session check: FOR SHARE makes a logout (which updates the row) wait until
// this order has committed, so the order is either before the logout or refused.
const LOCK_SESSION = statement(
  'orders_lock_session',
  `select id from sessions
    where id = $1::uuid and user_id = $2::bigint and revoked_at is null and expires_at > $3::timestamptz
      for share`,
);

const FIND_KEY = statement(
  'orders_find_key',
  `select request_hash, order_id::text as order_id, created_at >= $3::timestamptz as fresh
     from idempotency_keys where user_id = $1::bigint and key = $2::text`,
);
const DELETE_KEY = statement(
  'orders_delete_key',
  'delete from idempotency_keys where user_id = $1::bigint and key = $2::text',
);
const READ_ORDER = statement(
  'orders_read_order',
  `select id::text as id, user_id::text as user_id, symbol, side, requested_size::text as requested_size, status,
          executed_price::text as executed_price, executed_size::text as executed_size, fee::text as fee, reason,
          seq::text as seq, created_at
     from orders where id = $1::bigint`,
);

/**
 * An order in two statements and no transaction, the common case: read the user's counters,
 * holdings and idempotency key in one snapshot (`SNAPSHOT`), apply the paper-trading rules,
 * and write everything in one statement that applies only if the user's `order_seq` has not
 * moved since the read (optimistic concurrency; a single statement commits on its own).
 * Nothing is locked between the two round trips, and BEGIN and COMMIT cost none.
 *
 * Returns null, having written nothing, whenever the locked transaction must decide instead:
 * another order of the same user got in between (the seq moved), the user or one of the
 * order's rows is missing, or the idempotency key is past its lifetime (it must be replaced).
 */
async function placeOptimistically(
  query: Query,
  batched: OrderStatements,
  input: PlaceOrderInput,
  now: () => Date,
): Promise<PlaceOrderResult | null> {
  const key = input.idempotency;
  const rows = await batched.snapshot([
    input.userId,
    key?.key ?? null,
    key?.notBefore.toISOString() ?? null,
    input.session?.id ?? null,
    input.session?.at.toISOString() ?? null,
  ]);
  let counters: Row | undefined;
  let sessionFound = false;
  let available: string | undefined;
  let position: { size: string; avgEntryPrice: string } | undefined;
  let keyRow: Row | undefined;
  for (const row of rows) {
    if (row.kind === 'u') counters = row;
    else if (row.kind === 'k') keyRow = row;
    else if (row.kind === 's') sessionFound = true;
    else if (row.kind === 'b' && row.asset === input.quoteAsset) available = String(row.a);
    else if (row.kind === 'p' && row.asset === input.symbol) {
      position = { size: String(row.a), avgEntryPrice: String(row.b) };
    }
  }
  if (input.session && !sessionFound) throw new SessionNotActiveError();
  if (!counters || available === undefined || !position) return null;
  if (keyRow) {
    if (keyRow.b !== 'true') return null;
    return replayOrder(query, key!, { order_id: keyRow.asset, request_hash: keyRow.a });
  }
  return writeOrder(batched, input, now, {
    seq: String(counters.a),
    version: String(counters.b),
    available,
    position,
    holdings: () => Promise.resolve(rows),
  });
}

/**
 * The order as one transaction holding the user's locks (four prepared statements plus BEGIN
 * and COMMIT), for when `placeOptimistically` steps aside; concurrent orders of one user queue
 * here on the user's row instead of retrying.
 *
 * 1. Lock the user, the quote balance and the base position in one SELECT … FOR NO KEY UPDATE
 *    (rows of a join are locked table by table in FROM order: user → balance → position, the
 *    order every path takes). After waiting for a lock, PostgreSQL re-reads the locked rows at
 *    their latest version, so the balance and counters are current. NO KEY UPDATE still
 *    serialises the user's orders but lets a logout's outbox insert check its foreign key on
 *    the user row, which it must: the logout holds the session row the next step waits for.
 *    Then hold the order's session (FOR SHARE): a logout either waits for this order or, having
 *    committed first, makes it refused.
 * 2. After a fill only: read the user's holdings for the portfolio event; a statement of its
 *    own because only a snapshot taken after the locks sees the user's other assets as the
 *    previous order left them.
 * 3. Write everything in one statement (`WRITE_FILL` or `WRITE_REJECT`, whose seq guard
 *    always holds under the lock).
 *
 * Returns null when the balance or position row is missing (or the user is unknown), having
 * locked nothing: the statement-by-statement path handles those in a transaction of its own.
 */
async function placeLocked(query: Query, input: PlaceOrderInput, now: () => Date): Promise<PlaceOrderResult | null> {
  const { userId, symbol, quoteAsset } = input;
  const locked = (await query(LOCK, [userId, quoteAsset, symbol]))[0];
  if (!locked) return null;
  const { session } = input;
  if (session && (await query(LOCK_SESSION, [session.id, userId, session.at.toISOString()])).length === 0) {
    throw new SessionNotActiveError();
  }

  const replay = await checkKeyWithStatements(query, userId, input.idempotency);
  if (replay) return replay;

  const placed = await writeOrder(writesOn(query), input, now, {
    seq: String(locked.seq),
    version: String(locked.version),
    available: String(locked.available),
    position: { size: String(locked.size), avgEntryPrice: String(locked.avg) },
    holdings: () => query(HOLDINGS, [userId]),
  });
  // Under the user's lock nobody can move the seq.
  if (!placed) throw new Error(`order_seq of user ${userId} moved while locked`);
  return placed;
}

/** Whether the order's price may no longer be traded at `at`: judged so on arrival, or past its validity. */
function priceStaleAt(input: PlaceOrderInput, at: Date): boolean {
  return input.priceStale === true || (input.priceValidUntil !== undefined && at > input.priceValidUntil);
}

/** What an order is computed from: the user's counters and rows as read (or locked). */
interface OrderState {
  seq: string;
  version: string;
  available: string;
  position: { size: string; avgEntryPrice: string };
  /** The user's balance ('b') and position ('p') rows, asked for only after a fill. */
  holdings: () => Promise<Row[]>;
}

/**
 * Applies the paper-trading rules to `state` and writes the order, its events and its
 * idempotency key in one statement. Null when the user's seq is no longer `state.seq`.
 */
async function writeOrder(
  writes: Pick<OrderStatements, 'fill' | 'reject'>,
  input: PlaceOrderInput,
  now: () => Date,
  state: OrderState,
): Promise<PlaceOrderResult | null> {
  const { userId, symbol, quoteAsset } = input;
  // Taken after the read of the seq this order follows, so that timestamps follow seq order.
  const executedAt = now();
  const timestamp = executedAt.toISOString();
  const outcome = executeMarketOrder({
    side: input.side,
    size: input.size,
    price: input.price,
    priceStale: priceStaleAt(input, executedAt),
    feeRate: input.feeRate,
    quoteAvailable: state.available,
    position: state.position,
  });
  const filled = outcome.status === 'filled';
  const seq = toSafeInteger(state.seq) + 1;
  const version = toSafeInteger(state.version) + (filled ? 1 : 0);
  const key = input.idempotency;
  // Without its order id, which the statement assigns (and sets into the stored event).
  const orderEvent = orderEventOf(
    { userId, side: input.side, baseAsset: symbol, quoteAsset },
    input,
    outcome,
    timestamp,
    seq,
  );

  let written: Row[];
  let portfolioEvent: Record<string, unknown> | undefined;
  if (filled) {
    const rows = await state.holdings();
    const holdings = holdingsAfter(rows, quoteAsset, outcome.quoteAvailable, symbol, outcome.position);
    portfolioEvent = portfolioEventOf(userId, holdings, timestamp, version, seq);
    written = await writes.fill([
      userId,
      quoteAsset,
      symbol,
      input.side,
      input.size,
      seq,
      version,
      outcome.quoteAvailable,
      outcome.position.size,
      outcome.position.avgEntryPrice,
      outcome.executedPrice,
      outcome.executedSize,
      outcome.fee,
      timestamp,
      JSON.stringify(orderEvent),
      JSON.stringify(portfolioEvent),
      key?.key ?? null,
      key?.requestHash ?? null,
      input.session?.id ?? null,
      input.session?.at.toISOString() ?? null,
    ]);
  } else {
    written = await writes.reject([
      userId,
      symbol,
      input.side,
      input.size,
      outcome.reason,
      seq,
      timestamp,
      JSON.stringify(orderEvent),
      key?.key ?? null,
      key?.requestHash ?? null,
      input.session?.id ?? null,
      input.session?.at.toISOString() ?? null,
    ]);
  }
  if (written.length === 0) return null;
  const orderId = toSafeInteger(written[0]!.id);
  const events = written
    .map((row): OutboxEvent => {
      const kind = row.kind as OutboxEvent['kind'];
      const portfolio = kind === 'portfolio';
      return {
        id: toSafeInteger(row.event_id),
        userId,
        kind,
        position: portfolio ? version : seq,
        // As the statement stored them: the order event with its id set (jsonb_set).
        payload: portfolio ? portfolioEvent : { ...orderEvent, orderId },
      };
    })
    .sort((a, b) => a.id - b.id);
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
  return { order, portfolioVersion: filled ? version : null, replayed: false, events };
}

/**
 * The order event of a fill or a rejection, exactly as it will be published (shapes of
 * @repo/events); `fields` carries the order id where it is known before the write.
 */
function orderEventOf(
  fields: { userId: number; orderId?: number; side: Side; baseAsset: string; quoteAsset: string },
  input: Pick<PlaceOrderInput, 'size'>,
  outcome: MarketOrderOutcome,
  timestamp: string,
  seq: number,
): Record<string, unknown> {
  return outcome.status === 'filled'
    ? {
        ...fields,
        executedPrice: outcome.executedPrice,
        executedSize: outcome.executedSize,
        fee: outcome.fee,
        timestamp,
        seq,
      }
    : { ...fields, requestedSize: input.size, reason: outcome.reason, timestamp, seq };
}

/** The portfolio event after a fill, as it will be published. */
function portfolioEventOf(
  userId: number,
  holdings: { balances: BalanceView[]; positions: PositionView[] },
  timestamp: string,
  version: number,
  seq: number,
): Record<string, unknown> {
  return { userId, balances: holdings.balances, positions: holdings.positions, timestamp, version, orderSeq: seq };
}

/**
 * The user's balances and positions (by asset, canonical decimals) from their rows, as they
 * are once this order's new quote balance and base position are written.
 */
function holdingsAfter(
  rows: Row[],
  quoteAsset: string,
  quoteAvailable: string,
  symbol: string,
  position: { size: string; avgEntryPrice: string },
): { balances: BalanceView[]; positions: PositionView[] } {
  const holdings: { balances: BalanceView[]; positions: PositionView[] } = { balances: [], positions: [] };
  for (const row of rows) {
    const asset = String(row.asset);
    if (row.kind === 'b') {
      const available = asset === quoteAsset ? quoteAvailable : canonical(String(row.a));
      holdings.balances.push({ asset, available, locked: canonical(String(row.b)) });
    } else if (row.kind !== 'p') continue;
    else if (asset === symbol) holdings.positions.push({ asset, ...position });
    else holdings.positions.push({ asset, size: canonical(String(row.a)), avgEntryPrice: canonical(String(row.b)) });
  }
  return holdings;
}

/** `checkIdempotencyKey` of the prepared-statement path: the same rules, the same answers. */
async function checkKeyWithStatements(
  query: Query,
  userId: number,
  idempotency: PlaceOrderInput['idempotency'],
): Promise<PlaceOrderResult | null> {
  if (!idempotency) return null;
  const [existing] = await query(FIND_KEY, [userId, idempotency.key, idempotency.notBefore.toISOString()]);
  if (existing && existing.fresh === true) return replayOrder(query, idempotency, existing);
  // Past its lifetime: the key is free again.
  if (existing) await query(DELETE_KEY, [userId, idempotency.key]);
  return null;
}

/** The order a fresh idempotency key was first used for, if this request is that order again. */
async function replayOrder(
  query: Query,
  idempotency: NonNullable<PlaceOrderInput['idempotency']>,
  existing: Row,
): Promise<PlaceOrderResult> {
  if (existing.request_hash !== idempotency.requestHash) throw new IdempotencyKeyReusedError();
  const [first] = await query(READ_ORDER, [existing.order_id]);
  return { order: rowToRecord(first!), portfolioVersion: null, replayed: true, events: [] };
}

function rowToRecord(row: Row): OrderRecord {
  // Every column but created_at is selected as text (or is text).
  const text = (value: unknown) => (value === null || value === undefined ? null : (value as string));
  const createdAt = row.created_at instanceof Date ? row.created_at : new Date(row.created_at as string);
  return {
    orderId: toSafeInteger(row.id),
    userId: toSafeInteger(row.user_id),
    symbol: String(row.symbol),
    side: row.side as Side,
    requestedSize: canonical(String(row.requested_size)),
    status: row.status as OrderRecord['status'],
    executedPrice: canonicalOrNull(text(row.executed_price)),
    executedSize: canonicalOrNull(text(row.executed_size)),
    fee: canonicalOrNull(text(row.fee)),
    reason: text(row.reason) as RejectReason | null,
    seq: toSafeInteger(row.seq),
    timestamp: createdAt.toISOString(),
  };
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
    return { order: toRecord(first!), portfolioVersion: null, replayed: true, events: [] };
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

/**
 * The order transaction statement by statement: the path for a user whose quote balance or
 * base position row does not exist yet (an asset added to the configuration after the user
 * registered), which it opens empty.
 */
async function placeStepByStep(tx: DrizzleTx, input: PlaceOrderInput, now: () => Date): Promise<PlaceOrderResult> {
  const { userId, symbol, quoteAsset } = input;
  // The user row is always locked first (here the session follows, where the locked path
  // takes it last), so concurrent orders of a user queue on it instead of deadlocking. The
  // user lock alone serialises a user's orders, which also keeps `seq` in commit order. NO KEY
  // UPDATE: a logout inserts an outbox row, whose foreign key takes KEY SHARE on the user row
  // while it holds the session row this order waits for.
  const [user] = await tx.select({ id: users.id }).from(users).where(eq(users.id, userId)).for('no key update');
  if (!user) throw new UnknownUserError(userId);
  if (input.session) {
    const { id, at } = input.session;
    const active = and(
      eq(sessions.id, id),
      eq(sessions.userId, userId),
      isNull(sessions.revokedAt),
      gt(sessions.expiresAt, at),
    );
    const [session] = await tx.select({ id: sessions.id }).from(sessions).where(active).for('share');
    if (!session) throw new SessionNotActiveError();
  }

  const replay = await checkIdempotencyKey(tx, userId, input.idempotency);
  if (replay) return replay;
  const idempotency = input.idempotency;

  const quote = await lockBalance(tx, userId, quoteAsset);
  const base = await lockPosition(tx, userId, symbol);

  // Taken after the locks so that timestamps follow seq order.
  const executedAt = now();
  const outcome = executeMarketOrder({
    side: input.side,
    size: input.size,
    price: input.price,
    priceStale: priceStaleAt(input, executedAt),
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

  const orderFields = { userId, orderId: order.orderId, side: input.side, baseAsset: symbol, quoteAsset };
  const events: OutboxEvent[] = [];
  const record = async (kind: OutboxEvent['kind'], position: number, payload: Record<string, unknown>) => {
    const [row] = await tx
      .insert(outbox)
      .values({ userId, kind, position, payload, createdAt: sql`clock_timestamp()` })
      .returning({ id: outbox.id });
    events.push({ id: row!.id, userId, kind, position, payload });
  };
  await record(
    filled ? 'order_filled' : 'order_rejected',
    seq,
    orderEventOf(orderFields, input, outcome, timestamp, seq),
  );
  if (filled) {
    const holdings = await readHoldings(tx, userId);
    await record('portfolio', version, portfolioEventOf(userId, holdings, timestamp, version, seq));
  }
  if (idempotency) await storeIdempotencyKey(tx, userId, idempotency, order.orderId, executedAt);
  return { order, portfolioVersion: filled ? version : null, replayed: false, events };
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
