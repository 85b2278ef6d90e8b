import { and, asc, desc, eq, inArray, lt, sql } from 'drizzle-orm';
import type { DrizzleExecutor } from './drizzle.ts';
import { toDatabaseError } from './errors.ts';
import { canonical } from './decimal.ts';
import { CANDLE_INTERVALS, candles, type CandleInterval } from './schema.ts';

export { CANDLE_INTERVALS, type CandleInterval };

/** Length of each candle interval in milliseconds; a candle opens at a multiple of it (UTC). */
export const CANDLE_INTERVAL_MS: Readonly<Record<CandleInterval, number>> = Object.freeze({
  '1s': 1000,
  '1m': 60_000,
  '1h': 3_600_000,
});

/** One candle as the API shows it: open time in ms, prices as canonical decimal strings. */
export interface Candle {
  t: number;
  o: string;
  h: string;
  l: string;
  c: string;
}

/** A candle with its key, as the candle writer stores it. */
export interface CandleRow extends Candle {
  symbol: string;
  interval: CandleInterval;
}

export interface CandlesRepository {
  /**
   * Stores `rows`, each merged with a stored candle of the same symbol, interval and open time:
   * the stored open is kept, high and low widen to cover both, the close is the new one. A
   * candle written again as it grows (and by a writer taking over mid-candle) therefore never
   * loses an extreme. Written in statements of at most `UPSERT_CHUNK` rows.
   */
  upsert(rows: readonly CandleRow[]): Promise<void>;
  /**
   * At most `limit` candles of `symbol` at `interval` that opened before `before` (ms; all when
   * null), the newest ones, oldest first.
   */
  list(symbol: string, interval: CandleInterval, options: { limit: number; before?: number | null }): Promise<Candle[]>;
  /** Deletes up to `limit` candles of `interval` that opened before `beforeMs`, oldest first; returns how many. */
  prune(interval: CandleInterval, beforeMs: number, limit: number): Promise<number>;
}

/** Rows per INSERT: 7 parameters each keeps a statement far below PostgreSQL's 65535. */
export const UPSERT_CHUNK = 1000;

/** One row per candle (symbol, interval, open time), the last of each: a later row carries its later state. */
export function latestCandleRows(rows: readonly CandleRow[]): CandleRow[] {
  const latest = new Map<string, CandleRow>();
  for (const row of rows) latest.set(`${row.symbol}\n${row.interval}\n${row.t}`, row);
  return [...latest.values()];
}

/** The candles repository over `db` (the pool, or the candle writer's own connection). */
export function createCandlesRepository(db: DrizzleExecutor): CandlesRepository {
  return {
    async upsert(rows) {
      // One statement may not touch a row twice: the last version of a key wins.
      const unique = latestCandleRows(rows);
      try {
        for (let start = 0; start < unique.length; start += UPSERT_CHUNK) {
          const chunk = unique.slice(start, start + UPSERT_CHUNK);
          await db
            .insert(candles)
            .values(
              chunk.map((r) => ({
                symbol: r.symbol,
                interval: r.interval,
                openTimeMs: r.t,
                open: r.o,
                high: r.h,
                low: r.l,
                close: r.c,
              })),
            )
            .onConflictDoUpdate({
              target: [candles.symbol, candles.interval, candles.openTimeMs],
              set: {
                high: sql`greatest("candles"."high", excluded."high")`,
                low: sql`least("candles"."low", excluded."low")`,
                close: sql`excluded."close"`,
              },
            });
        }
      } catch (err) {
        throw toDatabaseError(err);
      }
    },

    async list(symbol, interval, { limit, before }) {
      try {
        const ofSeries = and(eq(candles.symbol, symbol), eq(candles.interval, interval));
        const rows = await db
          .select()
          .from(candles)
          .where(before === null || before === undefined ? ofSeries : and(ofSeries, lt(candles.openTimeMs, before)))
          .orderBy(desc(candles.openTimeMs))
          .limit(limit);
        return rows.reverse().map((r) => ({
          t: r.openTimeMs,
          o: canonical(r.open),
          h: canonical(r.high),
          l: canonical(r.low),
          c: canonical(r.close),
        }));
      } catch (err) {
        throw toDatabaseError(err);
      }
    },

    async prune(interval, beforeMs, limit) {
      try {
        const doomed = db
          .select({ symbol: candles.symbol, interval: candles.interval, openTimeMs: candles.openTimeMs })
          .from(candles)
          .where(and(eq(candles.interval, interval), lt(candles.openTimeMs, beforeMs)))
          .orderBy(asc(candles.openTimeMs))
          .limit(limit);
        const deleted = await db
          .delete(candles)
          .where(inArray(sql`(${candles.symbol}, ${candles.interval}, ${candles.openTimeMs})`, doomed))
          .returning({ t: candles.openTimeMs });
        return deleted.length;
      } catch (err) {
        throw toDatabaseError(err);
      }
    },
  };
}
