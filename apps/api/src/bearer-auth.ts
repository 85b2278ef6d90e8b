import type { FastifyRequest } from 'fastify';
import { hashToken, type ActiveSession, type SessionStore } from '@repo/db';
import { ApiError } from './errors.ts';

export interface BearerAuth {
  /** `onRequest` hook of protected routes: runs before the body is read. */
  hook: (request: FastifyRequest) => Promise<void>;
  /**
   * The same check for a route whose own statements check the session again before they write
   * (POST /orders passes it to the order): a session found active is remembered for a while,
   * so such a route skips the lookup. The route calls `sessionEnded` when its statements find
   * the session revoked or expired.
   */
  cachedHook: (request: FastifyRequest) => Promise<void>;
  /** The session the hook accepted for `request`. */
  sessionOf: (request: FastifyRequest) => ActiveSession;
  /** Forgets `request`'s session (its statements found it ended) and returns the 401 to answer. */
  sessionEnded: (request: FastifyRequest) => ApiError;
  /**
   * For a request `cachedHook` answered from the cache that is about to be refused before its
   * statements ran (a bad body, the rate limit): looks the session up and throws the 401 when
   * it has ended, so a revoked token gets 401, not 400 or 429.
   */
  confirm: (request: FastifyRequest) => Promise<void>;
  /** Forgets the cached session of `request`'s token (its logout). */
  forget: (request: FastifyRequest) => void;
}

export interface BearerAuthOptions {
  now?: () => Date;
  /** How long `cachedHook` trusts a session found active (default 60 s; never past its expiry). */
  cacheMs?: number;
  /**
   * Most sessions remembered; past it the oldest are forgotten first (default 20,000). An entry
   * holds about 0.8 KB of heap (its hash key, the session, the entry), 16 MB at the default.
   */
  maxCached?: number;
}

const CHALLENGE = { 'WWW-Authenticate': 'Bearer' };
const unauthorized = () => new ApiError('unauthorized', 'invalid or expired session', CHALLENGE);

/**
 * `Authorization: Bearer <token>` against the session store. The token is never echoed, logged
 * or put in an error; a revoked or expired session fails the same way as an unknown token.
 *
 * `hook` looks the session up on every request, so a logout takes effect at once. `cachedHook`
 * saves that round trip where the route's own statements re-check the session (the order's
 * read and its guarded write do): a logout still stops the next order, which then answers 401
 * and drops the session from the cache. The cache is keyed by the token's hash, not the token.
 */
export function createBearerAuth(store: SessionStore, options: BearerAuthOptions = {}): BearerAuth {
  const now = options.now ?? (() => new Date());
  const cacheMs = options.cacheMs ?? 60_000;
  const maxCached = options.maxCached ?? 20_000;
  if (!Number.isInteger(cacheMs) || cacheMs < 0) {
    throw new RangeError(`createBearerAuth: cacheMs must be a non-negative integer, got ${cacheMs}`);
  }
  if (!Number.isInteger(maxCached) || maxCached < 1) {
    throw new RangeError(`createBearerAuth: maxCached must be a positive integer, got ${maxCached}`);
  }
  // `fromCache`: the session was not looked up for this request.
  const accepted = new WeakMap<FastifyRequest, { session: ActiveSession; key: string | null; fromCache: boolean }>();
  const cache = new Map<string, { session: ActiveSession; until: number }>();

  function tokenOf(request: FastifyRequest): string {
    const header = request.headers.authorization;
    if (typeof header !== 'string' || header.length === 0) {
      throw new ApiError('unauthorized', 'missing bearer token', CHALLENGE);
    }
    const match = /^Bearer +(\S+)$/i.exec(header);
    if (!match) throw new ApiError('unauthorized', 'authorization must be "Bearer <token>"', CHALLENGE);
    return match[1]!;
  }

  function sessionEnded(request: FastifyRequest): ApiError {
    const key = accepted.get(request)?.key;
    if (key) cache.delete(key);
    return unauthorized();
  }

  async function verify(token: string): Promise<ActiveSession> {
    const session = await store.verify(token);
    if (!session) throw unauthorized();
    return session;
  }

  return {
    async hook(request) {
      accepted.set(request, { session: await verify(tokenOf(request)), key: null, fromCache: false });
    },

    async cachedHook(request) {
      const token = tokenOf(request);
      const key = hashToken(token);
      const at = now().getTime();
      const hit = cache.get(key);
      if (hit && hit.until > at) {
        accepted.set(request, { session: hit.session, key, fromCache: true });
        return;
      }
      cache.delete(key);
      const session = await verify(token);
      if (cache.size >= maxCached) cache.delete(cache.keys().next().value!);
      cache.set(key, { session, until: Math.min(session.expiresAt.getTime(), at + cacheMs) });
      accepted.set(request, { session, key, fromCache: false });
    },

    sessionOf(request) {
      const entry = accepted.get(request);
      // A route that forgot the hook is a programming error, never a client's.
      if (!entry) throw new Error('route reached without bearer authentication');
      return entry.session;
    },

    sessionEnded,

    async confirm(request) {
      if (!accepted.get(request)?.fromCache) return;
      if (!(await store.verify(tokenOf(request)))) throw sessionEnded(request);
    },

    forget(request) {
      cache.delete(hashToken(tokenOf(request)));
    },
  };
}
