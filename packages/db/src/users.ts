import { and, eq } from 'drizzle-orm';
import type { DrizzleDb } from './drizzle.ts';
import { UsernameTakenError, sqlStateOf, toDatabaseError } from './errors.ts';
import { canonical } from './decimal.ts';
import { balances, positions, users } from './schema.ts';

export interface NewUser {
  username: string;
  /** A hash from `hashPassword`, never the password. */
  passwordHash: string;
  /** Starting balances, e.g. `[{asset: 'USD', available: '10000'}]`. */
  balances: { asset: string; available: string }[];
  /** Base assets to open (empty) positions for, e.g. `['SOL']`. */
  positionAssets: string[];
}

export interface UserCredentials {
  userId: number;
  passwordHash: string;
}

export interface UsersRepository {
  /** Creates the user with its starting balances in one transaction. Throws `UsernameTakenError`. */
  create(user: NewUser): Promise<{ userId: number }>;
  /** The id and password hash of `username`, or null. */
  findCredentials(username: string): Promise<UserCredentials | null>;
  /**
   * Replaces the user's password hash with `newHash` when it is still `expectedHash` (a
   * rehash after login must not undo a change made meanwhile). True when it was replaced.
   */
  replacePasswordHash(userId: number, expectedHash: string, newHash: string): Promise<boolean>;
}

export function createUsersRepository(db: DrizzleDb): UsersRepository {
  return {
    async create(user) {
      try {
        return await db.transaction(async (tx) => {
          const [row] = await tx
            .insert(users)
            .values({ username: user.username, passwordHash: user.passwordHash })
            .returning({ id: users.id });
          const userId = row!.id;
          if (user.balances.length > 0) {
            await tx
              .insert(balances)
              .values(
                user.balances.map((b) => ({ userId, asset: b.asset, available: canonical(b.available), locked: '0' })),
              );
          }
          if (user.positionAssets.length > 0) {
            await tx.insert(positions).values(user.positionAssets.map((asset) => ({ userId, asset })));
          }
          return { userId };
        });
      } catch (err) {
        if (sqlStateOf(err) === '23505') throw new UsernameTakenError();
        throw toDatabaseError(err);
      }
    },

    async findCredentials(username) {
      try {
        const [row] = await db
          .select({ userId: users.id, passwordHash: users.passwordHash })
          .from(users)
          .where(eq(users.username, username))
          .limit(1);
        return row ?? null;
      } catch (err) {
        throw toDatabaseError(err);
      }
    },

    async replacePasswordHash(userId, expectedHash, newHash) {
      try {
        const rows = await db
          .update(users)
          .set({ passwordHash: newHash })
          .where(and(eq(users.id, userId), eq(users.passwordHash, expectedHash)))
          .returning({ id: users.id });
        return rows.length === 1;
      } catch (err) {
        throw toDatabaseError(err);
      }
    },
  };
}
