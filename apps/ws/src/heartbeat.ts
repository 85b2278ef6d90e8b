import type { ClientConnection } from './client-connection.ts';

/** The heartbeat wakes this often and pings one slice of the sockets. */
const SLICE_MS = 100;

/**
 * Pings every socket once per `pingIntervalMs` and terminates those that have not answered within
 * `pongTimeoutMs` (the `ws` README's "detect broken connections", with a separate deadline).
 * A dead peer (laptop lid closed, NAT dropped) never sends a close frame, so `terminate()`,
 * not `close()`, is the only way to free it.
 *
 * The sockets are spread over slices of the interval, and each tick pings one slice. Pinging
 * all of them in one tick held the event loop for 150–330 ms at 10,000 sockets (10,000 writes,
 * then 10,000 pongs at once), which every event in flight waited out: the benchmark's private
 * routing p99 at 10,000 users was 3× that at 1,000 until this change. One timer for the whole
 * gateway, not one per socket; each tick touches only its own slice.
 */
export class Heartbeat {
  readonly #pingIntervalMs: number;
  readonly #pongTimeoutMs: number;
  readonly #slices: Set<ClientConnection>[];
  #interval: NodeJS.Timeout | undefined;
  readonly #checks = new Set<NodeJS.Timeout>();
  #tick = 0;

  constructor(pingIntervalMs: number, pongTimeoutMs: number) {
    this.#pingIntervalMs = pingIntervalMs;
    this.#pongTimeoutMs = pongTimeoutMs;
    const count = Math.max(1, Math.round(pingIntervalMs / SLICE_MS));
    this.#slices = Array.from({ length: count }, () => new Set<ClientConnection>());
  }

  /** Starts watching a socket; it gets its first ping within one interval. */
  add(connection: ClientConnection): void {
    this.#sliceOf(connection).add(connection);
  }

  delete(connection: ClientConnection): void {
    this.#sliceOf(connection).delete(connection);
  }

  /** Ids are sequential: sockets opened together (a reconnect storm) spread evenly. */
  #sliceOf(connection: ClientConnection): Set<ClientConnection> {
    return this.#slices[connection.id % this.#slices.length]!;
  }

  start(): void {
    this.#interval = setInterval(() => this.#pingSlice(), this.#pingIntervalMs / this.#slices.length);
    this.#interval.unref();
  }

  stop(): void {
    clearInterval(this.#interval);
    for (const check of this.#checks) clearTimeout(check);
    this.#checks.clear();
  }

  #pingSlice(): void {
    const round = (this.#tick += 1);
    const pinged: ClientConnection[] = [];
    for (const connection of this.#slices[round % this.#slices.length]!) {
      // Still waiting from an earlier round: its own check will deal with it.
      if (connection.awaitingPong || !connection.isOpen) continue;
      connection.awaitingPong = true;
      connection.pingRound = round;
      connection.ws.ping();
      pinged.push(connection);
    }
    if (pinged.length === 0) return;
    const check = setTimeout(() => {
      this.#checks.delete(check);
      // Judge after the next I/O poll: if the event loop itself was stalled, pongs that already
      // arrived are still unread, and timers run before I/O in each loop iteration.
      setImmediate(() => {
        for (const connection of pinged) {
          // Waiting for a later round's ping means this round's was answered (a socket is
          // pinged again only after its pong), whatever the two intervals are.
          if (connection.awaitingPong && connection.pingRound === round) connection.terminate('heartbeat');
        }
      });
    }, this.#pongTimeoutMs);
    check.unref();
    this.#checks.add(check);
  }
}
