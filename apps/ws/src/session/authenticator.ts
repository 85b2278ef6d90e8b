import { withTimeout } from '@repo/retry';
import type { ThrottledWarning } from '../throttled-warning.ts';
import { isUsableSession, type Session, type SessionVerifier } from './session.ts';

/** The outcome of an `auth` request's token check. */
export type Verification =
  { ok: true; session: Session } | { ok: false; code: 'auth_failed' | 'internal_error'; message: string };

/**
 * Checks `auth` tokens for every socket of the process: the verifier (the database) with a
 * deadline, then what the answer must also pass (a usable shape, not expired, not revoked while
 * it was being looked up). A process-wide bound on verifications in flight belongs here.
 */
export class Authenticator {
  readonly #verifier: SessionVerifier;
  readonly #timeoutMs: number;
  readonly #wasRevoked: (sessionId: string, nowMs: number) => boolean;
  readonly #unavailable: ThrottledWarning;

  constructor(deps: {
    verifier: SessionVerifier;
    /** Longest wait for the verifier (`authTimeoutMs`). */
    timeoutMs: number;
    wasRevoked: (sessionId: string, nowMs: number) => boolean;
    dependencyWarning: ThrottledWarning;
  }) {
    this.#verifier = deps.verifier;
    this.#timeoutMs = deps.timeoutMs;
    this.#wasRevoked = deps.wasRevoked;
    this.#unavailable = deps.dependencyWarning;
  }

  async verify(token: string): Promise<Verification> {
    let session: unknown;
    try {
      session = await withTimeout(this.#verifier.verify(token), this.#timeoutMs, 'session verification');
    } catch (err) {
      this.#unavailable.warn({ err: (err as Error).message }, 'session verification failed');
      return { ok: false, code: 'internal_error', message: 'authentication is unavailable right now; retry' };
    }
    const now = Date.now();
    if (
      !isUsableSession(session) ||
      (session.expiresAt && session.expiresAt.getTime() <= now) ||
      this.#wasRevoked(session.sessionId, now)
    ) {
      return { ok: false, code: 'auth_failed', message: 'invalid or expired token' };
    }
    return { ok: true, session };
  }
}
