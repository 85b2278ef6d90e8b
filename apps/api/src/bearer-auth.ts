import type { FastifyRequest } from 'fastify';
import type { ActiveSession, SessionStore } from '@repo/db';
import { ApiError } from './errors.ts';

export interface BearerAuth {
  /** `onRequest` hook of protected routes: runs before the body is read. */
  hook: (request: FastifyRequest) => Promise<void>;
  /** The session the hook accepted for `request`. */
  sessionOf: (request: FastifyRequest) => ActiveSession;
}

const CHALLENGE = { 'WWW-Authenticate': 'Bearer' };

/**
 * `Authorization: Bearer <token>` against the session store. The token is never echoed, logged
 * or put in an error; a revoked or expired session fails the same way as an unknown token.
 */
export function createBearerAuth(store: SessionStore): BearerAuth {
  const sessions = new WeakMap<FastifyRequest, ActiveSession>();
  return {
    async hook(request) {
      const header = request.headers.authorization;
      if (typeof header !== 'string' || header.length === 0) {
        throw new ApiError('unauthorized', 'missing bearer token', CHALLENGE);
      }
      const match = /^Bearer +(\S+)$/i.exec(header);
      if (!match) throw new ApiError('unauthorized', 'authorization must be "Bearer <token>"', CHALLENGE);
      const session = await store.verify(match[1]!);
      if (!session) throw new ApiError('unauthorized', 'invalid or expired session', CHALLENGE);
      sessions.set(request, session);
    },
    sessionOf(request) {
      const session = sessions.get(request);
      // A route that forgot the hook is a programming error, never a client's.
      if (!session) throw new Error('route reached without bearer authentication');
      return session;
    },
  };
}
