import type { ClientConnection } from './client-connection.ts';

/** The heartbeat wakes this often, pings one slice of the sockets and judges an older one. */
const SLICE_MS = 10;

/**
 * Pings every socket once per `pingIntervalMs` and terminates those that have not answered within
 * `pongTimeoutMs` (the `ws` README's "detect broken connections", with a separate deadline).
 * A dead peer (laptop lid closed, NAT dropped) never sends a close frame, so `terminate()`,
 * not `close()`, is the only way to free it.
 *
 * The sockets are spread over slices of the interval, and each tick pings one slice. Pinging
 * all of them in one tick held the event loop for 150–330 ms at 10,000 sockets (10,000 writes,
 * then 10,000 pongs at once), which every event in flight waited out; 100 ms slices (40 pings
 * a tick at 10,000 sockets) still left a ~1 ms busy spell ten times a second, which showed in
 * the benchmark's private-routing p99 at 10,000 users. A tick now pings a handful.
 *
 * The same tick judges the slice pinged `pongTimeoutMs` earlier, instead of arming a timer
 * per ping round: one timer for the whole gateway, and nothing allocated per tick that lives
 * for the pong deadline (100 timers, closures and arrays a second, each kept 10 s, were what
 * survived the gateway's minor GCs at 10,000 sockets and made each of them cost 2–3× more).
 * Deadlines count ticks, not wall time, so an event-loop stall of our own delays the verdict
 * instead of blaming the peers for it.
 */
export class Heartbeat {
  readonly #slices: Set<ClientConnection>[];
  readonly #tickMs: number;
  /** Ticks between a slice's ping and its verdict. */
  readonly #deadlineTicks: number;
  #interval: NodeJS.Timeout | undefined;
  #round = 0;
  /** Rounds up to this one are due for a verdict; those up to `#judgedThrough` have had it. */
  #dueThrough = 0;
  #judgedThrough = 0;
  #verdictScheduled = false;

  constructor(pingIntervalMs: number, pongTimeoutMs: number) {
    const count = Math.max(1, Math.round(pingIntervalMs / SLICE_MS));
    this.#slices = Array.from({ length: count }, () => new Set<ClientConnection>());
    this.#tickMs = pingIntervalMs / count;
    this.#deadlineTicks = Math.max(1, Math.ceil(pongTimeoutMs / this.#tickMs));
  }

  /** Starts watching a socket; it gets its first ping within one interval. */
  add(connection: ClientConnection): void {
    this.#sliceOf(connection.id).add(connection);
  }

  delete(connection: ClientConnection): void {
    this.#sliceOf(connection.id).delete(connection);
  }

  /** Ids are sequential: sockets opened together (a reconnect storm) spread evenly. */
  #sliceOf(round: number): Set<ClientConnection> {
    return this.#slices[round % this.#slices.length]!;
  }

  start(): void {
    this.#interval = setInterval(() => this.#tick(), this.#tickMs);
    this.#interval.unref();
  }

  stop(): void {
    clearInterval(this.#interval);
  }

  #tick(): void {
    const round = (this.#round += 1);
    for (const connection of this.#sliceOf(round)) {
      // Still waiting from an earlier round: that round's verdict deals with it.
      if (connection.awaitingPong || !connection.isOpen) continue;
      connection.awaitingPong = true;
      connection.pingRound = round;
      connection.ws.ping();
    }
    this.#dueThrough = round - this.#deadlineTicks;
    if (this.#dueThrough <= this.#judgedThrough || this.#verdictScheduled) return;
    // Judge after the next I/O poll: if the event loop itself was stalled, pongs that already
    // arrived are still unread, and timers run before I/O in each loop iteration.
    this.#verdictScheduled = true;
    setImmediate(this.#judge);
  }

  readonly #judge = (): void => {
    this.#verdictScheduled = false;
    // Normally one round; every due round if ticks ever outran the check phase.
    for (let round = this.#judgedThrough + 1; round <= this.#dueThrough; round++) {
      for (const connection of this.#sliceOf(round)) {
        // Waiting for a later round's ping means this round's was answered (a socket is
        // pinged again only after its pong), whatever the two intervals are.
        if (connection.awaitingPong && connection.pingRound === round) connection.terminate('heartbeat');
      }
    }
    this.#judgedThrough = Math.max(this.#judgedThrough, this.#dueThrough);
  };
}
