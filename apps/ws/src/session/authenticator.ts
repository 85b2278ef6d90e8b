import { SlotQueue, withTimeout } from '@repo/retry';
import type { GatewayMetrics } from '../metrics.ts';
import type { ThrottledWarning } from '../throttled-warning.ts';
import { isUsableSession, type Session, type SessionVerifier } from './session.ts';

/** The outcome of an `auth` request's token check. */
export type Verification =
  | { ok: true; session: Session }
  | { ok: false; code: 'auth_failed' | 'internal_error' | 'rate_limited'; message: string };

/** Who asked: a verification whose socket closed while it waited for a slot is not started. */
export interface Requester {
  readonly isOpen: boolean;
}

const UNAVAILABLE: Verification = {
  ok: false,
  code: 'internal_error',
  message: 'authentication is unavailable right now; retry',
};
const BUSY: Verification = {
  ok: false,
  code: 'rate_limited',
  message: 'too many authentications in progress; retry shortly',
};
const FAILED: Verification = { ok: false, code: 'auth_failed', message: 'invalid or expired token' };

/**
 * Checks `auth` tokens for every socket of the process: the verifier (the database) with a
 * deadline, then what the answer must also pass (a usable shape, not expired, not revoked while
 * it was being looked up).
 *
 * At most `concurrency` verifications are in flight at once; up to `maxWaiting` more wait for a
 * slot in arrival order, and any further one is answered `rate_limited` at once. A slot is held
 * until the verifier answers, even when the client was already told the check timed out: the
 * bound is on the work the database does, which a slow or locked database would otherwise let
 * pile up at the attackers' rate. Waiting counts against the same deadline as the lookup.
 */
export class Authenticator {
  readonly #verifier: SessionVerifier;
  readonly #timeoutMs: number;
  readonly #slots: SlotQueue;
  readonly #wasRevoked: (sessionId: string, nowMs: number) => boolean;
  readonly #unavailable: ThrottledWarning;
  readonly #release = (): void => this.#slots.release();

  constructor(deps: {
    verifier: SessionVerifier;
    /** Longest wait for a slot and the verifier together (`authTimeoutMs`). */
    timeoutMs: number;
    /** Verifications in flight at once (`authConcurrency`). */
    concurrency: number;
    /** Verifications that may wait for a slot (`maxAuthWaiting`). */
    maxWaiting: number;
    wasRevoked: (sessionId: string, nowMs: number) => boolean;
    dependencyWarning: ThrottledWarning;
    metrics: GatewayMetrics;
  }) {
    this.#verifier = deps.verifier;
    this.#timeoutMs = deps.timeoutMs;
    this.#slots = new SlotQueue({
      concurrency: deps.concurrency,
      maxWaiting: deps.maxWaiting,
      onChange: (inFlight, waiting) => deps.metrics.authPending(inFlight, waiting),
    });
    this.#wasRevoked = deps.wasRevoked;
    this.#unavailable = deps.dependencyWarning;
  }

  async verify(token: string, requester: Requester): Promise<Verification> {
    const deadline = Date.now() + this.#timeoutMs;
    const slot = this.#slots.acquire(deadline);
    if (!slot) return BUSY;
    if (!(await slot.granted)) {
      this.#unavailable.warn({ waiting: this.#slots.waiting }, 'session verification: no free slot in time');
      return UNAVAILABLE;
    }
    // This verification now holds a slot; `#release` gives it back when the verifier answers.
    if (!requester.isOpen) {
      this.#slots.release();
      return UNAVAILABLE;
    }
    let session: unknown;
    try {
      const lookup = this.#lookup(token);
      lookup.then(this.#release, this.#release);
      session = await withTimeout(lookup, Math.max(1, deadline - Date.now()), 'session verification');
    } catch (err) {
      this.#unavailable.warn({ err: (err as Error).message }, 'session verification failed');
      return UNAVAILABLE;
    }
    const now = Date.now();
    if (
      !isUsableSession(session) ||
      (session.expiresAt && session.expiresAt.getTime() <= now) ||
      this.#wasRevoked(session.sessionId, now)
    ) {
      return FAILED;
    }
    return { ok: true, session };
  }

  /** The verifier's answer as a promise, also when it throws instead of rejecting. */
  #lookup(token: string): Promise<unknown> {
    try {
      return Promise.resolve(this.#verifier.verify(token));
    } catch (err) {
      return Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
  }
}
