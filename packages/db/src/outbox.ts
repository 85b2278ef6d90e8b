import { and, asc, count, inArray, isNotNull, isNull, lt } from 'drizzle-orm';
import type { DrizzleDb } from './drizzle.ts';
import { toDatabaseError } from './errors.ts';
import { outbox, type OutboxKind } from './schema.ts';

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

export interface OutboxRepository {
  /** The oldest unpublished events, in id (commit) order, at most `limit`. */
  unpublished(limit: number): Promise<OutboxEvent[]>;
  /** Marks the events published. Marking twice is harmless. */
  markPublished(ids: readonly number[], at: Date): Promise<void>;
  /** How many events wait to be published. */
  backlog(): Promise<number>;
  /**
   * Deletes up to `limit` published events created before `before`, oldest first; returns how
   * many. Unpublished events are never deleted, however old.
   */
  prunePublished(before: Date, limit: number): Promise<number>;
}

export function createOutboxRepository(db: DrizzleDb): OutboxRepository {
  return {
    async unpublished(limit) {
      try {
        // Served by the partial index on unpublished rows.
        const rows = await db
          .select({
            id: outbox.id,
            userId: outbox.userId,
            kind: outbox.kind,
            position: outbox.position,
            payload: outbox.payload,
          })
          .from(outbox)
          .where(isNull(outbox.publishedAt))
          .orderBy(asc(outbox.id))
          .limit(limit);
        return rows;
      } catch (err) {
        throw toDatabaseError(err);
      }
    },

    async markPublished(ids, at) {
      if (ids.length === 0) return;
      try {
        await db.update(outbox).set({ publishedAt: at }).where(inArray(outbox.id, [...ids]));
      } catch (err) {
        throw toDatabaseError(err);
      }
    },

    async prunePublished(before, limit) {
      try {
        // Oldest ids first through the primary key, so each run touches only what it deletes.
        const doomed = db
          .select({ id: outbox.id })
          .from(outbox)
          .where(and(isNotNull(outbox.publishedAt), lt(outbox.createdAt, before)))
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
