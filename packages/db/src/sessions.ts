import { randomUUID } from 'node:crypto';
import { and, asc, eq, inArray, isNull, lte } from 'drizzle-orm';
import type { DrizzleDb } from './drizzle.ts';
import { toDatabaseError } from './errors.ts';
import { SESSION_TOKEN_PATTERN, hashToken, tokenHashesEqual } from './credentials.ts';
import { outbox, sessions } from './schema.ts';
import { statement, type StatementRunner } from './statements.ts';
import { toSafeInteger } from './int64.ts';

export interface ActiveSession {
  userId: number;
  /** The session row id (a UUID). Published on logout so gateways can find the sockets. */
  sessionId: string;
  expiresAt: Date;
}

/** Where a session stands: still usable, ended by a logout, or past its expiry (or deleted after it). */
export type SessionState = 'active' | 'revoked' | 'expired';

export interface SessionsRepository {
  /** Stores a session for `tokenHash` (never the token) and returns its id. */
  create(input: { userId: number; tokenHash: string; expiresAt: Date }): Promise<{ sessionId: string }>;
  /** The session with this token hash when it is neither revoked nor expired at `now`. */
  findActive(tokenHash: string, now: Date): Promise<ActiveSession | null>;
  /**
   * The state of each of `sessionIds` at `now`, in one query. An id with no row is `expired`:
   * sessions are deleted only once expired, and an id that is not a UUID never had a row.
   */
  findStates(sessionIds: readonly string[], now: Date): Promise<Map<string, SessionState>>;
  /**
   * Revokes the session and, in the same transaction, records a `session_revoked` outbox event
   * `{"sessionId": …}` for the relay to publish. Returns false when it was already revoked.
   */
  revoke(sessionId: string, now: Date): Promise<boolean>;
  /**
   * Deletes up to `limit` sessions that expired at or before `now`, oldest first; returns how
   * many. An expired session can never be used again, so nothing is lost.
   */
  deleteExpired(now: Date, limit: number): Promise<number>;
}

/**
 * `lookup` runs `findActive`: on PostgreSQL a pool of its own whose connections carry a
 * statement timeout (see `openDatabase`), so a slow or locked database makes token checks
 * fail fast and end their queries, instead of piling them up behind the order traffic.
 */
// Every authenticated request runs it: a prepared statement (see statements.ts).
const FIND_ACTIVE = statement(
  'sessions_find_active',
  `select user_id::text as user_id, id, expires_at, token_hash from sessions
    where token_hash = $1::text and revoked_at is null and expires_at > $2::timestamptz
    limit 1`,
);

export function createSessionsRepository(
  db: DrizzleDb,
  lookup: DrizzleDb,
  lookupStatements: StatementRunner,
): SessionsRepository {
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
        const [row] = await lookupStatements.query(FIND_ACTIVE, [tokenHash, now.toISOString()]);
        // The index lookup already matched; the constant-time comparison is a second, explicit
        // check that does not depend on how the database compares strings.
        if (!row || !tokenHashesEqual(String(row.token_hash), tokenHash)) return null;
        const expiresAt = row.expires_at instanceof Date ? row.expires_at : new Date(String(row.expires_at));
        return { userId: toSafeInteger(row.user_id), sessionId: String(row.id), expiresAt };
      } catch (err) {
        throw toDatabaseError(err);
      }
    },

    async findStates(sessionIds, now) {
      const states = new Map<string, SessionState>();
      const ids = [...new Set(sessionIds)];
      for (const id of ids) states.set(id, 'expired');
      // A malformed id would fail the whole query on PostgreSQL's uuid cast.
      const wellFormed = ids.filter((id) => UUID_PATTERN.test(id));
      if (wellFormed.length === 0) return states;
      try {
        const rows = await lookup
          .select({ id: sessions.id, expiresAt: sessions.expiresAt, revokedAt: sessions.revokedAt })
          .from(sessions)
          .where(inArray(sessions.id, wellFormed));
        for (const row of rows) {
          states.set(row.id, row.revokedAt ? 'revoked' : row.expiresAt > now ? 'active' : 'expired');
        }
        return states;
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

    async deleteExpired(now, limit) {
      try {
        const doomed = db
          .select({ id: sessions.id })
          .from(sessions)
          .where(lte(sessions.expiresAt, now))
          .orderBy(asc(sessions.expiresAt))
          .limit(limit);
        const deleted = await db.delete(sessions).where(inArray(sessions.id, doomed)).returning({ id: sessions.id });
        return deleted.length;
      } catch (err) {
        throw toDatabaseError(err);
      }
    },
  };
}

const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** What the gateway's `SessionVerifier` expects (structurally). */
export interface SessionStore {
  /** The session of `token` when it is valid now, else null. Never throws for a bad token. */
  verify(token: string): Promise<ActiveSession | null>;
  /**
   * The state of each of `sessionIds` now (the gateway's re-check of its open sockets), in
   * one query per `checkBatchSize` ids, one batch after the other. Rejects when the database
   * fails; nothing is remembered.
   */
  check(sessionIds: readonly string[]): Promise<Map<string, SessionState>>;
}

export interface SessionStoreOptions {
  /** Clock of session expiry and of the failed-token memory (default: the system clock). */
  now?: () => Date;
  /** How long a token that failed verification is answered from memory (default 60 s). */
  failedTokenTtlMs?: number;
  /** Most failed tokens remembered; past it the oldest are forgotten first (default 50,000). */
  maxFailedTokens?: number;
  /** Session ids per query of `check` (default 500). */
  checkBatchSize?: number;
}

export const DEFAULT_FAILED_TOKEN_TTL_MS = 60_000;
export const DEFAULT_MAX_FAILED_TOKENS = 50_000;
export const DEFAULT_CHECK_BATCH_SIZE = 500;

/**
 * The session verifier shared by the API's Bearer auth and the gateway, so both follow one
 * rule: each distinct bad token costs at most one query per `failedTokenTtlMs`.
 *
 * - Malformed tokens are refused without a query.
 * - A token that failed (unknown, revoked, expired) is remembered by its hash and refused
 *   from memory for `failedTokenTtlMs`. That is safe because a token never becomes valid
 *   later: it is handed out only after its session row committed, and revocation and expiry
 *   are final. Successes are never remembered, so a logout takes effect at once.
 * - Concurrent checks of one token share one query, so a burst of the same bad token is one
 *   query too.
 * - Database errors are not remembered: they reach the caller, and the next check asks again.
 *
 * Memory: at most `maxFailedTokens` hashes (about 130 bytes each, some 7 MiB at the default).
 */
export function createSessionStore(
  db: { sessions: SessionsRepository },
  options: SessionStoreOptions = {},
): SessionStore {
  const now = options.now ?? (() => new Date());
  const ttlMs = options.failedTokenTtlMs ?? DEFAULT_FAILED_TOKEN_TTL_MS;
  const maxFailed = options.maxFailedTokens ?? DEFAULT_MAX_FAILED_TOKENS;
  if (!Number.isFinite(ttlMs) || ttlMs < 0) throw new RangeError(`failedTokenTtlMs must be >= 0, got ${ttlMs}`);
  if (!Number.isInteger(maxFailed) || maxFailed < 0) {
    throw new RangeError(`maxFailedTokens must be a non-negative integer, got ${maxFailed}`);
  }
  const batchSize = options.checkBatchSize ?? DEFAULT_CHECK_BATCH_SIZE;
  if (!Number.isInteger(batchSize) || batchSize < 1) {
    throw new RangeError(`checkBatchSize must be a positive integer, got ${batchSize}`);
  }
  // Every entry lives equally long, so insertion order is expiry order: the oldest is first.
  const failed = new Map<string, number>();
  const inFlight = new Map<string, Promise<ActiveSession | null>>();

  function rememberFailure(hash: string, at: number): void {
    if (maxFailed === 0 || ttlMs === 0) return;
    failed.delete(hash);
    while (failed.size >= maxFailed) failed.delete(failed.keys().next().value!);
    failed.set(hash, at + ttlMs);
  }

  return {
    verify(token) {
      if (typeof token !== 'string' || !SESSION_TOKEN_PATTERN.test(token)) return Promise.resolve(null);
      const hash = hashToken(token);
      const at = now();
      const until = failed.get(hash);
      if (until !== undefined) {
        if (until > at.getTime()) return Promise.resolve(null);
        failed.delete(hash);
      }
      const pending = inFlight.get(hash);
      if (pending) return pending;
      const check = db.sessions
        .findActive(hash, at)
        .then((session) => {
          if (!session) rememberFailure(hash, now().getTime());
          return session;
        })
        .finally(() => inFlight.delete(hash));
      inFlight.set(hash, check);
      return check;
    },

    async check(sessionIds) {
      const states = new Map<string, SessionState>();
      for (let i = 0; i < sessionIds.length; i += batchSize) {
        const batch = await db.sessions.findStates(sessionIds.slice(i, i + batchSize), now());
        for (const [id, state] of batch) states.set(id, state);
      }
      return states;
    },
  };
}
