import type { Connection } from './connection.ts';

/** The heartbeat pings one slice of the sockets per this much time. */
const SLICE_MS = 10;
/** Longer intervals get longer slices, not more of them (each slice is a Set). */
const MAX_SLICES = 4096;
/**
 * Pings one wake-up of the timer sends on average. The timer wakes once per slice (10 ms) only
 * when the sockets are that many: 10,000 at the default interval, where slices of this size were
 * measured; fewer sockets wake it less often, down to `MAX_WAKE_MS`. A wake-up with nothing to
 * do cost a process about 200 µs of CPU on this project's virtual machine: eight idle workers
 * waking every 10 ms took 15 % of a core (docs/benchmarks.md, "The heartbeat's idle wake-ups").
 */
const PINGS_PER_WAKE = 4;
/** Longest time between wake-ups; deadlines are judged at most this late. */
const MAX_WAKE_MS = 1000;
/** Rounds due pinged in one wake-up at most, in wake-ups' worth, while catching up after a stall. */
const CATCH_UP_WAKES = 4;
/** A wake-up this much later than due follows a stall of the gateway's own loop. */
const STALL_MS = 50;

/**
 * Pings every socket once per `pingIntervalMs` and terminates those that have not answered within
 * `pongTimeoutMs` (the `ws` README's "detect broken connections", with a separate deadline).
 * A dead peer (laptop lid closed, NAT dropped) never sends a close frame, so `terminate()`,
 * not `close()`, is the only way to free it.
 *
 * The sockets are spread over slices of the interval, one round pinging one slice: a ping
 * burst (and the pong burst after it) holds the event loop, and every event in flight waits it
 * out. The timer wakes as often as it takes to send about `PINGS_PER_WAKE` pings each time,
 * pinging every round that fell due since the last wake-up. Deadlines are kept in one queue of
 * ping times, judged by the same timer, rather than a timer per round: nothing per round outlives
 * a minor GC. Rounds and deadlines follow the clock, not the count of wake-ups, so a busy loop
 * (whose timers fire late) neither stretches the interval nor lets dead sockets live longer. The
 * measurements behind these choices are in docs/benchmarks.md ("What profiling found").
 */
export class Heartbeat {
  readonly #slices: Set<Connection>[];
  readonly #sliceMs: number;
  readonly #pingIntervalMs: number;
  readonly #pongTimeoutMs: number;
  /** Sockets watched, over every slice. */
  #size = 0;
  #interval: NodeJS.Timeout | undefined;
  /** The running interval's period: `#sliceMs` times a power of two. */
  #wakeMs = 0;
  #verdict: NodeJS.Immediate | undefined;
  #startedAt = 0;
  #lastWakeAt = 0;
  /** Rounds pinged so far; round r pings slice r % slices. */
  #round = 0;
  /** When the rounds not yet judged were pinged, oldest (at `#oldest`) first, up to `#round`. */
  readonly #pingedAt: number[] = [];
  #oldest = 0;
  #graceTaken = false;

  constructor(pingIntervalMs: number, pongTimeoutMs: number) {
    const count = Math.min(MAX_SLICES, Math.max(1, Math.round(pingIntervalMs / SLICE_MS)));
    this.#slices = Array.from({ length: count }, () => new Set<Connection>());
    this.#sliceMs = pingIntervalMs / count;
    this.#pingIntervalMs = pingIntervalMs;
    this.#pongTimeoutMs = pongTimeoutMs;
  }

  /** Starts watching a socket; it gets its first ping within one interval and one wake-up. */
  add(connection: Connection): void {
    const slice = this.#sliceOf(connection.id);
    if (slice.has(connection)) return;
    // Past the period's count, the timer wakes now, before the socket joins: the rounds due
    // since the last wake-up go out at the count they fell due at (a few pings), where the next
    // wake-up would send them all at once at the new count (a storm after an idle spell), and
    // the shorter period then runs from a wake-up, so re-arming never postpones one.
    const shorten = this.#interval !== undefined && this.#wakeMsFor(this.#size + 1) < this.#wakeMs;
    if (shorten) this.#wake();
    slice.add(connection);
    this.#size += 1;
    if (shorten) this.#arm(this.#wakeMsFor(this.#size));
  }

  delete(connection: Connection): void {
    if (this.#sliceOf(connection.id).delete(connection)) this.#size -= 1;
  }

  /**
   * The slice of a connection id or of a round. Ids are sequential: sockets opened together (a
   * reconnect storm) spread evenly.
   */
  #sliceOf(n: number): Set<Connection> {
    return this.#slices[n % this.#slices.length]!;
  }

  /**
   * The period for the sockets watched now: one slice's time doubled while a wake-up would still
   * send fewer than `PINGS_PER_WAKE` pings on average, and short enough to judge deadlines on time.
   */
  #wakeMsFor(size: number): number {
    const longest = Math.min(MAX_WAKE_MS, this.#pongTimeoutMs / 4, this.#pingIntervalMs);
    const wanted = Math.min(longest, (PINGS_PER_WAKE * this.#pingIntervalMs) / Math.max(1, size));
    let wakeMs = this.#sliceMs;
    while (wakeMs * 2 <= wanted) wakeMs *= 2;
    return wakeMs;
  }

  start(): void {
    if (this.#interval) return;
    // Rounds already pinged (before a stop) count as past: the next is due one slice from now.
    this.#startedAt = performance.now() - this.#round * this.#sliceMs;
    this.#arm(this.#wakeMsFor(this.#size));
  }

  #arm(wakeMs: number): void {
    clearInterval(this.#interval);
    this.#lastWakeAt = performance.now();
    this.#wakeMs = wakeMs;
    this.#interval = setInterval(() => this.#wake(), Math.max(1, Math.floor(wakeMs)));
    this.#interval.unref();
  }

  stop(): void {
    clearInterval(this.#interval);
    clearImmediate(this.#verdict);
    this.#interval = this.#verdict = undefined;
  }

  #wake(): void {
    const now = performance.now();
    const stalled = now - this.#lastWakeAt > this.#wakeMs + STALL_MS;
    this.#lastWakeAt = now;
    const due = Math.floor((now - this.#startedAt) / this.#sliceMs);
    const most = Math.round((CATCH_UP_WAKES * this.#wakeMs) / this.#sliceMs);
    for (let n = 0; n < most && this.#round < due; n++) this.#ping(now);
    // Lengthened here, not as sockets go: a count that crosses a power of two back and forth
    // would otherwise keep pushing the next wake-up out.
    const wakeMs = this.#wakeMsFor(this.#size);
    if (wakeMs !== this.#wakeMs) this.#arm(wakeMs);
    // After a stall of our own, pongs may be unread, or pings unanswered by a peer that shares
    // this loop: give them one more wake-up before judging, but never two in a row.
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
