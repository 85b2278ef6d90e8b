import { z } from 'zod';

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

/** `{"sessionId":"…"}` on `trading:events:session:revoked`; other keys are ignored. */
const SessionRevokedSchema = z.object({ sessionId: z.string().min(1).max(256) });

/** Decodes a revocation message from the broker; null when it is malformed. Never throws. */
export function decodeSessionRevoked(raw: string): { sessionId: string } | null {
  let data: unknown;
  try {
    data = JSON.parse(raw);
  } catch {
    return null;
  }
  const parsed = SessionRevokedSchema.safeParse(data);
  return parsed.success ? parsed.data : null;
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

/**
 * Session ids revoked in the last `ttlMs`, so an `auth` whose verification was already in
 * flight when the revocation arrived cannot resurrect the session. Bounded by `maxEntries`.
 */
export class RecentRevocations {
  readonly #at = new Map<string, number>();
  readonly #ttlMs: number;
  readonly #maxEntries: number;

  constructor(ttlMs = 60_000, maxEntries = 10_000) {
    this.#ttlMs = ttlMs;
    this.#maxEntries = maxEntries;
  }

  add(sessionId: string, nowMs: number): void {
    this.#at.delete(sessionId);
    this.#at.set(sessionId, nowMs);
    // Oldest first (Map keeps insertion order): trim expired and overflow from the front.
    for (const [id, at] of this.#at) {
      if (this.#at.size <= this.#maxEntries && nowMs - at < this.#ttlMs) break;
      this.#at.delete(id);
    }
  }

  has(sessionId: string, nowMs: number): boolean {
    const at = this.#at.get(sessionId);
    return at !== undefined && nowMs - at < this.#ttlMs;
  }
}
