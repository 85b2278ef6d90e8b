import { decodeSessionRevoked, EVENT_CHANNELS } from '../broker-contract.ts';
import type { GatewayMetrics } from '../metrics.ts';
import type { BrokerRoute } from '../streams/stream.ts';
import { SubscriberIndex } from '../streams/subscriber-index.ts';
import type { ThrottledWarning } from '../throttled-warning.ts';
import { RecentRevocations } from './recent-revocations.ts';

/** What the registry needs of a socket's session. */
export interface RegisteredSession {
  end(code: 'session_revoked' | 'session_expired'): void;
}

/**
 * The authenticated sockets by session id, so that a revocation (a logout on any node) finds
 * its sockets without a scan, and the sessions revoked lately, so that an `auth` whose
 * verification was in flight when the revocation arrived cannot bring the session back.
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
