/** Who a token belongs to. `expiresAt` (when set) ends the socket's authentication at that time. */
export interface Session {
  userId: number;
  sessionId: string;
  expiresAt?: Date | null;
}

/** Where a session stands now (`check`). */
export type SessionState = 'active' | 'revoked' | 'expired';

/**
 * Keeps a user's private events coming to this process while a socket of theirs is
 * authenticated (the broker feed: on a Redis Cluster, the user's partition). `hold` resolves
 * once they reach the process, `true` when they did not reach it all along since `since` (a
 * `mark()` taken before the token was checked: a revocation may have been missed); each `hold`
 * is ended by one `release`.
 */
export interface PartitionHolder {
  mark(): number;
  hold(userId: number, since?: number): Promise<boolean>;
  release(userId: number): void;
}

/** Maps a bearer token to its session; null when unknown/expired/revoked. The API plugs the DB-backed one in. */
export interface SessionVerifier {
  verify(token: string): Promise<Session | null>;
  /**
   * The state of each of `sessionIds` now, for re-checking open sockets (after a broker outage,
   * in which a logout may have been missed, and periodically). Optional: without it the
   * gateway relies on the revocation messages alone. `createSessionStore` of @repo/db has it.
   */
  check?(sessionIds: readonly string[]): Promise<Map<string, SessionState>>;
}

/** A session's userId must be a positive safe integer: anything else from a verifier is refused. */
export function isUsableSession(session: unknown): session is Session {
  if (typeof session !== 'object' || session === null) return false;
  const { userId, sessionId, expiresAt } = session as Session;
  return (
    Number.isSafeInteger(userId) &&
    userId > 0 &&
    typeof sessionId === 'string' &&
    sessionId.length > 0 &&
    (expiresAt === undefined || expiresAt === null || (expiresAt instanceof Date && !Number.isNaN(expiresAt.getTime())))
  );
}
