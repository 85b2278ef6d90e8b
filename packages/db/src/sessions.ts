import { randomUUID } from 'node:crypto';
import { and, eq, gt, isNull } from 'drizzle-orm';
import type { DrizzleDb } from './drizzle.ts';
import { toDatabaseError } from './errors.ts';
import { SESSION_TOKEN_PATTERN, hashToken, tokenHashesEqual } from './credentials.ts';
import { outbox, sessions } from './schema.ts';

export interface ActiveSession {
  userId: number;
  /** The session row id (a UUID). Published on logout so gateways can find the sockets. */
  sessionId: string;
  expiresAt: Date;
}

export interface SessionsRepository {
  /** Stores a session for `tokenHash` (never the token) and returns its id. */
  create(input: { userId: number; tokenHash: string; expiresAt: Date }): Promise<{ sessionId: string }>;
  /** The session with this token hash when it is neither revoked nor expired at `now`. */
  findActive(tokenHash: string, now: Date): Promise<ActiveSession | null>;
  /**
   * Revokes the session and, in the same transaction, records a `session_revoked` outbox event
   * `{"sessionId": …}` for the relay to publish. Returns false when it was already revoked.
   */
  revoke(sessionId: string, now: Date): Promise<boolean>;
}

export function createSessionsRepository(db: DrizzleDb): SessionsRepository {
  return {
    async create({ userId, tokenHash, expiresAt }) {
      const sessionId = randomUUID();
      try {
        await db.insert(sessions).values({ id: sessionId, userId, tokenHash, expiresAt });
      } catch (err) {
        throw toDatabaseError(err);
      }
      return { sessionId };
    },

    async findActive(tokenHash, now) {
      try {
        const [row] = await db
          .select({
            userId: sessions.userId,
            sessionId: sessions.id,
            expiresAt: sessions.expiresAt,
            tokenHash: sessions.tokenHash,
          })
          .from(sessions)
          .where(and(eq(sessions.tokenHash, tokenHash), isNull(sessions.revokedAt), gt(sessions.expiresAt, now)))
          .limit(1);
        // The index lookup already matched; the constant-time comparison is a second, explicit
        // check that does not depend on how the database compares strings.
        if (!row || !tokenHashesEqual(row.tokenHash, tokenHash)) return null;
        return { userId: row.userId, sessionId: row.sessionId, expiresAt: row.expiresAt };
      } catch (err) {
        throw toDatabaseError(err);
      }
    },

    async revoke(sessionId, now) {
      try {
        return await db.transaction(async (tx) => {
          const [row] = await tx
            .update(sessions)
            .set({ revokedAt: now })
            .where(and(eq(sessions.id, sessionId), isNull(sessions.revokedAt)))
            .returning({ userId: sessions.userId });
          if (!row) return false;
          await tx.insert(outbox).values({ userId: row.userId, kind: 'session_revoked', payload: { sessionId } });
          return true;
        });
      } catch (err) {
        throw toDatabaseError(err);
      }
    },
  };
}

/** What the gateway's `SessionVerifier` expects (structurally). */
export interface SessionStore {
  /** The session of `token` when it is valid now, else null. Never throws for a bad token. */
  verify(token: string): Promise<ActiveSession | null>;
}

/**
 * The session verifier shared by the API and the gateway, so WebSocket auth works when the
 * gateway runs as its own process on the same database. Malformed tokens are refused without
 * a query.
 */
export function createSessionStore(
  db: { sessions: SessionsRepository },
  options: { now?: () => Date } = {},
): SessionStore {
  const now = options.now ?? (() => new Date());
  return {
    async verify(token) {
      if (typeof token !== 'string' || !SESSION_TOKEN_PATTERN.test(token)) return null;
      return db.sessions.findActive(hashToken(token), now());
    },
  };
}
