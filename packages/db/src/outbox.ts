import { and, asc, count, inArray, isNotNull, isNull, lt, sql } from 'drizzle-orm';
import type { DrizzleDb } from './drizzle.ts';
import { toDatabaseError } from './errors.ts';
import { toSafeInteger } from './int64.ts';
import { outbox, type OutboxKind } from './schema.ts';
import { statement, type Row, type StatementRunner } from './statements.ts';

/** One recorded event waiting to be published. */
export interface OutboxEvent {
  id: number;
  userId: number;
  kind: OutboxKind;
  /** `seq` of an order event, `version` of a portfolio event, null for a session revocation. */
  position: number | null;
  /** The event as it is to be published. */
  payload: unknown;
}

/** One page of a user's order-event history (the outbox rows of kind order_filled/order_rejected). */
export interface OrderHistoryPage {
  /** Events with `seq` above the requested one, in `seq` order, as recorded (payloads unchecked). */
  events: { kind: 'order_filled' | 'order_rejected'; seq: number; payload: unknown }[];
  /** The user's latest order-event `seq` (0 before the first order), from the same snapshot. */
  latestSeq: number;
  /** The oldest `seq` still recorded for the user, null when none is. */
  oldestSeq: number | null;
  /** True when more events follow (the count or byte bound cut this page short). */
  truncated: boolean;
}

export interface OutboxRepository {
  /**
   * The user's order events after `afterSeq`, at most `limit` of them and, past the first,
   * at most about `maxBytes` of JSON. Published or not: every recorded event is committed.
   * One statement, so `latestSeq`, `oldestSeq` and the events agree with each other.
   */
  orderHistory(userId: number, afterSeq: number, limit: number, maxBytes: number): Promise<OrderHistoryPage>;
  /**
   * The oldest unpublished events, in id (commit) order, at most `limit`; with `minAgeMs`, only
   * those recorded at least that long ago by the database's clock (the rest are still being
   * published by the process that recorded them).
   */
  unpublished(limit: number, minAgeMs?: number): Promise<OutboxEvent[]>;
  /** Marks the events published. Marking twice is harmless. */
  markPublished(ids: readonly number[], at: Date): Promise<void>;
  /**
   * `markPublished(ids, at)` then `unpublished(limit)`, in one statement: the relay's passes
   * that follow each other pay one round trip each instead of two.
   */
  markPublishedAndRead(ids: readonly number[], at: Date, limit: number, minAgeMs?: number): Promise<OutboxEvent[]>;
  /** How many events wait to be published. */
  backlog(): Promise<number>;
  /**
   * Deletes up to `limit` published events created before `before`, oldest first; returns how
   * many. Unpublished events are never deleted, however old, and neither are a user's last
   * `keepOrderEvents` order events (the replay history gateways read): an event goes only when
   * it is past both retentions.
   */
  prunePublished(before: Date, limit: number, keepOrderEvents?: number): Promise<number>;
}

// The relay runs these for every batch it publishes: prepared statements (see statements.ts).
// Served by the partial index on unpublished rows. The age bound (0 for none) is on the
// database's clock, which also stamped `created_at`: no skew between hosts.
const EVENT_COLUMNS = 'o.id::text as id, o.user_id::text as user_id, o.kind, o.position::text as position, o.payload';
const OLD_ENOUGH = (param: string) =>
  `(${param}::int = 0 or o.created_at <= now() - ${param}::int * interval '1 millisecond')`;
const UNPUBLISHED = statement(
  'outbox_unpublished',
  // Ordered by the bigint column, not by the text it is answered as.
  `select ${EVENT_COLUMNS} from outbox o where o.published_at is null and ${OLD_ENOUGH('$2')}
    order by o.id limit $1::int`,
);
const MARK_PUBLISHED = statement(
  'outbox_mark_published',
  'update outbox set published_at = $2::timestamptz where id = any($1::bigint[])',
);
// The select runs on the statement's snapshot, which does not see the update: the marked ids
// are left out by hand.
const MARK_AND_READ = statement(
  'outbox_mark_and_read',
  `with marked as (update outbox set published_at = $2::timestamptz where id = any($1::bigint[]))
   select ${EVENT_COLUMNS}
     from outbox o where o.published_at is null and o.id <> all($1::bigint[]) and ${OLD_ENOUGH('$4')}
    order by o.id limit $3::int`,
);

function toOutboxEvent(row: Row): OutboxEvent {
  return {
    id: toSafeInteger(row.id),
    userId: toSafeInteger(row.user_id),
    kind: row.kind as OutboxKind,
    position: row.position === null || row.position === undefined ? null : toSafeInteger(row.position),
    payload: row.payload,
  };
}

/** A minimum age in whole milliseconds for the statements' int parameter (0: none). */
function ageBound(minAgeMs: number): number {
  if (!Number.isFinite(minAgeMs) || minAgeMs < 0) throw new RangeError(`minAgeMs must be ≥ 0, got ${minAgeMs}`);
  return Math.min(Math.ceil(minAgeMs), 2_147_483_647);
}

export function createOutboxRepository(db: DrizzleDb, statements: StatementRunner): OutboxRepository {
  return {
    async unpublished(limit, minAgeMs = 0) {
      try {
        return (await statements.query(UNPUBLISHED, [limit, ageBound(minAgeMs)])).map(toOutboxEvent);
      } catch (err) {
        throw toDatabaseError(err);
      }
    },

    async markPublished(ids, at) {
      if (ids.length === 0) return;
      try {
        await statements.query(MARK_PUBLISHED, [ids.map(String), at.toISOString()]);
      } catch (err) {
        throw toDatabaseError(err);
      }
    },

    async markPublishedAndRead(ids, at, limit, minAgeMs = 0) {
      try {
        const rows = await statements.query(MARK_AND_READ, [
          ids.map(String),
          at.toISOString(),
          limit,
          ageBound(minAgeMs),
        ]);
        return rows.map(toOutboxEvent);
      } catch (err) {
        throw toDatabaseError(err);
      }
    },

    async orderHistory(userId, afterSeq, limit, maxBytes) {
      try {
        // users.order_seq and the outbox rows are written in the same transaction, and one
        // statement reads one snapshot, so `latest` covers exactly the rows returned.
        // `afterSeq` is cast: a client's `since` may be any safe integer, past int4.
        const result = await db.execute(sql`
          select u.order_seq as latest,
                 (select min(o.position) from outbox o
                   where o.user_id = u.id and o.kind in ('order_filled', 'order_rejected')) as oldest,
                 e.kind, e.position, e.payload
            from users u
            left join lateral (
              select o.kind, o.position, o.payload from outbox o
               where o.user_id = u.id and o.kind in ('order_filled', 'order_rejected')
                 and o.position > ${afterSeq}::bigint
               order by o.position
               limit ${limit + 1}
            ) e on true
           where u.id = ${userId}
           order by e.position`);
        const rows = (result as { rows: Record<string, unknown>[] }).rows;
        if (rows.length === 0) return { events: [], latestSeq: 0, oldestSeq: null, truncated: false };
        const first = rows[0]!;
        const page: OrderHistoryPage = {
          events: [],
          latestSeq: toSafeInteger(first.latest ?? 0),
          oldestSeq: first.oldest === null || first.oldest === undefined ? null : toSafeInteger(first.oldest),
          truncated: false,
        };
        let bytes = 0;
        for (const row of rows) {
          if (row.position === null || row.position === undefined) continue;
          if (page.events.length === limit) {
            page.truncated = true;
            break;
          }
          const payload = typeof row.payload === 'string' ? (JSON.parse(row.payload) as unknown) : row.payload;
          bytes += JSON.stringify(payload).length;
          // Always at least one event, so a reader makes progress whatever the bound.
          if (page.events.length > 0 && bytes > maxBytes) {
            page.truncated = true;
            break;
          }
          page.events.push({
            kind: row.kind as 'order_filled' | 'order_rejected',
            seq: toSafeInteger(row.position),
            payload,
          });
        }
        return page;
      } catch (err) {
        throw toDatabaseError(err);
      }
    },

    async prunePublished(before, limit, keepOrderEvents = 0) {
      try {
        // Oldest ids first through the primary key, so each run touches only what it deletes.
        const keep = Math.max(0, Math.floor(keepOrderEvents));
        const pastRetention = and(isNotNull(outbox.publishedAt), lt(outbox.createdAt, before));
        const doomed = db
          .select({ id: outbox.id })
          .from(outbox)
          .where(
            keep === 0
              ? pastRetention
              : and(
                  pastRetention,
                  sql`(${outbox.kind} not in ('order_filled', 'order_rejected')
                       or ${outbox.position}
                          <= (select u.order_seq from users u where u.id = ${outbox.userId}) - ${keep})`,
                ),
          )
          .orderBy(asc(outbox.id))
          .limit(limit);
        const deleted = await db.delete(outbox).where(inArray(outbox.id, doomed)).returning({ id: outbox.id });
        return deleted.length;
      } catch (err) {
        throw toDatabaseError(err);
      }
    },

    async backlog() {
      try {
        const [row] = await db.select({ n: count() }).from(outbox).where(isNull(outbox.publishedAt));
        return Number(row?.n ?? 0);
      } catch (err) {
        throw toDatabaseError(err);
      }
    },
  };
}
