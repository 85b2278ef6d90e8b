import { asc, eq } from 'drizzle-orm';
import type { DrizzleDb, DrizzleExecutor } from './drizzle.ts';
import { toDatabaseError } from './errors.ts';
import { canonical } from './decimal.ts';
import { balances, positions, users } from './schema.ts';

export interface BalanceView {
  asset: string;
  available: string;
  locked: string;
}

export interface PositionView {
  asset: string;
  size: string;
  avgEntryPrice: string;
}

export interface PortfolioView {
  balances: BalanceView[];
  positions: PositionView[];
  /** The version of the user's latest portfolio event (0 before the first fill). */
  version: number;
  /** The `seq` of the user's latest order event (0 before the first order): what this view reflects. */
  orderSeq: number;
}

export interface PortfolioRepository {
  /** The user's balances and positions (by asset), with canonical decimals; null for an unknown user. */
  get(userId: number): Promise<PortfolioView | null>;
}

/** Reads balances and positions through `executor` (inside a transaction when given one). */
export async function readHoldings(
  executor: DrizzleExecutor,
  userId: number,
): Promise<{ balances: BalanceView[]; positions: PositionView[] }> {
  const balanceRows = await executor
    .select({ asset: balances.asset, available: balances.available, locked: balances.locked })
    .from(balances)
    .where(eq(balances.userId, userId))
    .orderBy(asc(balances.asset));
  const positionRows = await executor
    .select({ asset: positions.asset, size: positions.size, avgEntryPrice: positions.avgEntryPrice })
    .from(positions)
    .where(eq(positions.userId, userId))
    .orderBy(asc(positions.asset));
  return {
    balances: balanceRows.map((b) => ({
      asset: b.asset,
      available: canonical(b.available),
      locked: canonical(b.locked),
    })),
    positions: positionRows.map((p) => ({
      asset: p.asset,
      size: canonical(p.size),
      avgEntryPrice: canonical(p.avgEntryPrice),
    })),
  };
}

export function createPortfolioRepository(db: DrizzleDb): PortfolioRepository {
  return {
    async get(userId) {
      try {
        // One transaction so balances, positions and version are one consistent snapshot
        // (READ COMMITTED alone could show a fill's balance without its position).
        return await db.transaction(async (tx) => {
          const [user] = await tx
            .select({ version: users.portfolioVersion, orderSeq: users.orderSeq })
            .from(users)
            .where(eq(users.id, userId))
            .for('share');
          if (!user) return null;
          return { ...(await readHoldings(tx, userId)), version: user.version, orderSeq: user.orderSeq };
        });
      } catch (err) {
        throw toDatabaseError(err);
      }
    },
  };
}
