import type { Connection } from './connection.ts';

/** The heartbeat pings one slice of the sockets per this much time. */
const SLICE_MS = 10;
/** Longer intervals get longer slices, not more of them (each slice is a Set). */
const MAX_SLICES = 4096;
/** Slices pinged in one tick at most while catching up after a stall, so it never bursts. */
const CATCH_UP_SLICES = 4;
/** A tick this much later than the previous one follows a stall of the gateway's own loop. */
const STALL_MS = 50;

/**
 * Pings every socket once per `pingIntervalMs` and terminates those that have not answered within
 * `pongTimeoutMs` (the `ws` README's "detect broken connections", with a separate deadline).
 * A dead peer (laptop lid closed, NAT dropped) never sends a close frame, so `terminate()`,
 * not `close()`, is the only way to free it.
 *
 * The sockets are spread over slices of the interval, and each tick pings one slice: a ping
 * burst (and the pong burst after it) holds the event loop, and every event in flight waits it
 * out. Deadlines are kept in one queue of ping times, judged by the same timer, rather than a
 * timer per round: nothing per round outlives a minor GC. Rounds and deadlines follow the clock,
 * not the count of ticks, so a busy loop (whose timers fire late) neither stretches the interval
 * nor lets dead sockets live longer. The measurements behind these choices are in
 * docs/benchmarks.md ("What profiling found").
 */
export class Heartbeat {
  readonly #slices: Set<Connection>[];
  readonly #tickMs: number;
  readonly #pongTimeoutMs: number;
  #interval: NodeJS.Timeout | undefined;
  #verdict: NodeJS.Immediate | undefined;
  #startedAt = 0;
  #lastTickAt = 0;
  /** Rounds pinged so far; round r pings slice r % slices. */
  #round = 0;
  /** When the rounds not yet judged were pinged, oldest (at `#oldest`) first, up to `#round`. */
  readonly #pingedAt: number[] = [];
  #oldest = 0;
  #graceTaken = false;

  constructor(pingIntervalMs: number, pongTimeoutMs: number) {
    const count = Math.min(MAX_SLICES, Math.max(1, Math.round(pingIntervalMs / SLICE_MS)));
    this.#slices = Array.from({ length: count }, () => new Set<Connection>());
    this.#tickMs = pingIntervalMs / count;
    this.#pongTimeoutMs = pongTimeoutMs;
  }

  /** Starts watching a socket; it gets its first ping within one interval. */
  add(connection: Connection): void {
    this.#sliceOf(connection.id).add(connection);
  }

  delete(connection: Connection): void {
    this.#sliceOf(connection.id).delete(connection);
  }

  /**
   * The slice of a connection id or of a round. Ids are sequential: sockets opened together (a
   * reconnect storm) spread evenly.
   */
  #sliceOf(n: number): Set<Connection> {
    return this.#slices[n % this.#slices.length]!;
  }

  start(): void {
    if (this.#interval) return;
    this.#startedAt = this.#lastTickAt = performance.now();
    // Wakes at least once per slice; which slices are due is read from the clock.
    this.#interval = setInterval(() => this.#tick(), Math.max(1, Math.floor(this.#tickMs)));
    this.#interval.unref();
  }

  stop(): void {
    clearInterval(this.#interval);
    clearImmediate(this.#verdict);
    this.#interval = this.#verdict = undefined;
  }

  #tick(): void {
    const now = performance.now();
    const stalled = now - this.#lastTickAt > STALL_MS;
    this.#lastTickAt = now;
    const due = Math.floor((now - this.#startedAt) / this.#tickMs);
    for (let n = 0; n < CATCH_UP_SLICES && this.#round < due; n++) this.#ping(now);
    // After a stall of our own, pongs may be unread, or pings unanswered by a peer that shares
    // this loop: give them one more tick before judging, but never two in a row.
    if (stalled && !this.#graceTaken) {
      this.#graceTaken = true;
      return;
    }
    this.#graceTaken = false;
    const oldest = this.#pingedAt[this.#oldest];
    if (oldest === undefined || now - oldest < this.#pongTimeoutMs || this.#verdict) return;
    // Judge after the next I/O poll, where pongs that arrived since the last one are read.
    this.#verdict = setImmediate(this.#judge);
  }

  #ping(now: number): void {
    const round = (this.#round += 1);
    this.#pingedAt.push(now);
    for (const connection of this.#sliceOf(round)) {
      // Still waiting from an earlier round: that round's verdict deals with it.
      connection.ping(round);
    }
  }

  readonly #judge = (): void => {
    this.#verdict = undefined;
    const now = performance.now();
    const pingedAt = this.#pingedAt;
    while (this.#oldest < pingedAt.length && now - pingedAt[this.#oldest]! >= this.#pongTimeoutMs) {
      const round = this.#round - (pingedAt.length - this.#oldest) + 1;
      this.#oldest += 1;
      for (const connection of this.#sliceOf(round)) {
        // Waiting for a later round's ping means this round's was answered (a socket is
        // pinged again only after its pong), whatever the two intervals are.
        if (connection.missedPong(round)) connection.terminate('heartbeat');
      }
    }
    // Drop judged entries now and then, in place: the queue holds one deadline's worth.
    if (this.#oldest >= 1024) {
      pingedAt.copyWithin(0, this.#oldest);
      pingedAt.length -= this.#oldest;
      this.#oldest = 0;
    }
  };
}
