import { MAX_EVENT_LENGTH } from '@repo/events';
import type { Logger } from '@repo/log';
import type { BrokerRoute } from '../streams/stream.ts';
import type { ThrottledWarning } from '../throttled-warning.ts';
import type { SessionRegistry } from './session-registry.ts';
import type { SessionState } from './session.ts';

/** Private events held while a re-check after a broker outage runs, at most. */
const MAX_HELD = 10_000;

interface Held {
  readonly handler: BrokerRoute['handler'];
  readonly raw: string;
  readonly channel: string | undefined;
}

/**
 * When the gateway re-checks its open sessions against the session store, and what waits for
 * it. A logout is one broker message: a gateway whose subscriber was reconnecting at that
 * moment never hears it, and the socket would go on receiving the user's events until the
 * session expired. So:
 *
 * - after every broker recovery, before the channels catch up on what they missed, every
 *   authenticated socket's session is checked (one query per few hundred sessions) and the
 *   revoked or expired ones end. Private events that arrive from the moment the broker went
 *   down until that check is done are held (at most 10,000, at most `timeoutMs`), so that
 *   neither a live event nor a caught-up one reaches a socket whose session ended meanwhile;
 * - while the broker stays down yet events still arrive (one unreachable shard of a Redis
 *   Cluster, or the command connection down while the subscriber is up), the same check runs
 *   every `timeoutMs` and lets go the events held before it began: a long outage delays
 *   private events by a check's worth, not for as long as it lasts;
 * - every `intervalMs` the same check runs as a backstop.
 *
 * An event longer than any event may be (`MAX_EVENT_LENGTH`) is not held: its handler refuses
 * it at once, as it would after the hold, and the hold's memory stays bounded.
 *
 * A check that fails (the database is down too) is logged and lets the held events go: the
 * periodic check retries, and with the database down no new private event can be made.
 */
export class SessionRecheck {
  readonly #registry: SessionRegistry;
  readonly #check: ((sessionIds: readonly string[]) => Promise<Map<string, SessionState>>) | null;
  readonly #intervalMs: number;
  readonly #timeoutMs: number;
  readonly #logger: Logger;
  readonly #warning: ThrottledWarning;
  /** Non-null while private events are held. */
  #held: Held[] | null = null;
  /** Bumped by every recovery: only the latest one's check opens the gate. */
  #epoch = 0;
  #timer: NodeJS.Timeout | undefined;
  #periodicRunning = false;
  /** While the broker is down: lets go, every `timeoutMs`, what was held before a check. */
  #outageTimer: NodeJS.Timeout | undefined;
  #outageCheckRunning = false;

  constructor(deps: {
    registry: SessionRegistry;
    /** The session store's batch lookup; null when the verifier has none (nothing is re-checked). */
    check: ((sessionIds: readonly string[]) => Promise<Map<string, SessionState>>) | null;
    /** Between periodic checks (`sessionRecheckIntervalMs`). */
    intervalMs: number;
    /** Longest hold of private events after a recovery (`authTimeoutMs`). */
    timeoutMs: number;
    logger: Logger;
    dependencyWarning: ThrottledWarning;
  }) {
    this.#registry = deps.registry;
    this.#check = deps.check;
    this.#intervalMs = deps.intervalMs;
    this.#timeoutMs = deps.timeoutMs;
    this.#logger = deps.logger;
    this.#warning = deps.dependencyWarning;
  }

  /** `route` with its events held while a re-check after a recovery runs (for private channels). */
  gate(route: BrokerRoute): BrokerRoute {
    const { handler } = route;
    return {
      kind: route.kind,
      handler: (raw, channel) => {
        const held = this.#held;
        if (held === null || raw.length > MAX_EVENT_LENGTH) return handler(raw, channel);
        held.push({ handler, raw, channel });
        if (held.length >= MAX_HELD) this.#release();
      },
    };
  }

  /** The broker went down: private events that arrive from now on wait for the next check. */
  paused(): void {
    const check = this.#check;
    if (!check) return;
    this.#held ??= [];
    if (this.#outageTimer) return;
    this.#outageTimer = setInterval(() => {
      if (this.#outageCheckRunning) return;
      const held = this.#held;
      if (held === null) return this.#endOutageChecks();
      // Nothing arrives in a whole outage: nothing waits, and the check waits for the recovery.
      if (held.length === 0) return;
      // Only what arrived before the check began is vouched for by it; the rest waits on.
      const checked = held.length;
      this.#outageCheckRunning = true;
      void this.#run(check, 'broker outage').finally(() => {
        this.#outageCheckRunning = false;
        if (this.#held === held) this.#deliver(held.splice(0, checked));
      });
    }, this.#timeoutMs);
    this.#outageTimer.unref();
  }

  /**
   * The broker is back: checks every open session, then lets the held events go and calls
   * `recover` (the channels' catch-up), so what they deliver goes only to sessions still valid.
   */
  resumed(recover: () => void): void {
    const check = this.#check;
    if (!check) return recover();
    this.#endOutageChecks();
    this.#held ??= [];
    const epoch = (this.#epoch += 1);
    let done = false;
    const finish = () => {
      if (done || epoch !== this.#epoch) return;
      done = true;
      clearTimeout(deadline);
      this.#release();
      recover();
    };
    const deadline = setTimeout(() => {
      if (done || epoch !== this.#epoch) return;
      this.#warning.warn({ timeoutMs: this.#timeoutMs }, 'session re-check after broker recovery is slow; not waiting');
      finish();
    }, this.#timeoutMs);
    deadline.unref();
    void this.#run(check, 'broker recovery').finally(finish);
  }

  /** Starts the periodic check. */
  start(): void {
    if (!this.#check || this.#timer) return;
    this.#timer = setInterval(() => {
      if (this.#periodicRunning) return;
      this.#periodicRunning = true;
      void this.#run(this.#check!, 'periodic').finally(() => {
        this.#periodicRunning = false;
      });
    }, this.#intervalMs);
    this.#timer.unref();
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
    this.#endOutageChecks();
    this.#epoch += 1;
    this.#held = null;
  }

  /** One check of every open session; never rejects. */
  async #run(check: (sessionIds: readonly string[]) => Promise<Map<string, SessionState>>, why: string): Promise<void> {
    try {
      const ended = await this.#registry.recheck(check);
      if (ended > 0) this.#logger.info({ ended, why }, 'session re-check ended revoked or expired sessions');
    } catch (err) {
      this.#warning.warn({ err: (err as Error).message, why }, 'session re-check failed');
    }
  }

  #endOutageChecks(): void {
    clearInterval(this.#outageTimer);
    this.#outageTimer = undefined;
  }

  #release(): void {
    const held = this.#held;
    this.#held = null;
    if (held) this.#deliver(held);
  }

  #deliver(held: readonly Held[]): void {
    for (const { handler, raw, channel } of held) {
      try {
        handler(raw, channel);
      } catch (err) {
        // As the broker does for a throwing handler: the others still get their events.
        this.#logger.error({ err }, 'broker handler threw on a held event');
      }
    }
  }
}
