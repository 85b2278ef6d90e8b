/** Who a token belongs to. `expiresAt` (when set) ends the socket's authentication at that time. */
export interface Session {
  userId: number;
  sessionId: string;
  expiresAt?: Date | null;
}

/** Maps a bearer token to its session; null when unknown/expired/revoked. The API plugs the DB-backed one in. */
export interface SessionVerifier {
  verify(token: string): Promise<Session | null>;
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
