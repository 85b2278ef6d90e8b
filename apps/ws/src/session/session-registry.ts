import { decodeSessionRevoked, EVENT_CHANNELS } from '../broker-contract.ts';
import type { GatewayMetrics } from '../metrics.ts';
import type { BrokerRoute } from '../streams/stream.ts';
import { SubscriberIndex } from '../streams/subscriber-index.ts';
import type { ThrottledWarning } from '../throttled-warning.ts';
import { RecentRevocations } from './recent-revocations.ts';
import type { SessionState } from './session.ts';

/** What the registry needs of a socket's session. */
export interface RegisteredSession {
  end(code: 'session_revoked' | 'session_expired'): void;
}

/**
 * The authenticated sockets by session id, so that a revocation (a logout on any node) finds
 * its sockets without a scan, and the sessions revoked lately, so that an `auth` whose
 * verification was in flight when the revocation arrived cannot bring the session back. It
 * also re-checks every open session against the store, for the revocations it never heard.
 */
export class SessionRegistry<S extends RegisteredSession = RegisteredSession> {
  readonly route: BrokerRoute;
  readonly #bySession = new SubscriberIndex<string, S>();
  readonly #revocations = new RecentRevocations();
  readonly #metrics: GatewayMetrics;
  readonly #malformed: ThrottledWarning;

  constructor(deps: { metrics: GatewayMetrics; malformedWarning: ThrottledWarning }) {
    this.#metrics = deps.metrics;
    this.#malformed = deps.malformedWarning;
    this.route = { kind: 'session_revoked', handler: this.#onRevoked };
  }

  add(sessionId: string, session: S): void {
    this.#bySession.add(sessionId, session);
  }

  remove(sessionId: string, session: S): void {
    this.#bySession.remove(sessionId, session);
  }

  /** Whether `sessionId` was revoked lately (an answer from the verifier may predate it). */
  wasRevoked(sessionId: string, nowMs: number): boolean {
    return this.#revocations.has(sessionId, nowMs);
  }

  /** Ends every socket's authentication with `sessionId`: each is told, and loses its private streams. */
  revoke(sessionId: string, nowMs: number): void {
    this.#revocations.add(sessionId, nowMs);
    for (const session of [...this.#bySession.get(sessionId)]) session.end('session_revoked');
  }

  /**
   * Asks `check` where every open session stands and ends the revoked (`session_revoked`) and
   * expired (`session_expired`) ones: a logout published while this process was not listening
   * never reached it. Sessions that sign in meanwhile were verified just now and are not asked
   * about. Resolves with the number of sessions ended; rejects when `check` does.
   */
  async recheck(check: (sessionIds: readonly string[]) => Promise<Map<string, SessionState>>): Promise<number> {
    const ids = [...this.#bySession.keys()];
    if (ids.length === 0) return 0;
    const states = await check(ids);
    const now = Date.now();
    let ended = 0;
    for (const id of ids) {
      const state = states.get(id);
      if (state === 'revoked') {
        this.revoke(id, now);
        ended += 1;
      } else if (state === 'expired') {
        for (const session of [...this.#bySession.get(id)]) session.end('session_expired');
        ended += 1;
      }
    }
    return ended;
  }

  readonly #onRevoked = (raw: string, channel = EVENT_CHANNELS.session_revoked): void => {
    const decoded = decodeSessionRevoked(raw);
    if (!decoded) {
      this.#metrics.dropped('malformed');
      this.#malformed.warn({ channel }, 'dropped malformed session revocation');
      return;
    }
    this.revoke(decoded.sessionId, Date.now());
  };
}
