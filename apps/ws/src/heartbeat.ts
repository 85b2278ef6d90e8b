import type { ClientConnection } from './client-connection.ts';

/**
 * Pings every socket each `pingIntervalMs` and terminates those that have not answered within
 * `pongTimeoutMs` (the `ws` README's "detect broken connections", with a separate deadline).
 * A dead peer (laptop lid closed, NAT dropped) never sends a close frame, so `terminate()`,
 * not `close()`, is the only way to free it. One interval for the whole gateway, not a timer
 * per socket; the walk over all sockets happens once per interval, never per event.
 */
export class Heartbeat {
  readonly #connections: Iterable<ClientConnection>;
  readonly #pingIntervalMs: number;
  readonly #pongTimeoutMs: number;
  #interval: NodeJS.Timeout | undefined;
  readonly #checks = new Set<NodeJS.Timeout>();
  #round = 0;

  constructor(connections: Iterable<ClientConnection>, pingIntervalMs: number, pongTimeoutMs: number) {
    this.#connections = connections;
    this.#pingIntervalMs = pingIntervalMs;
    this.#pongTimeoutMs = pongTimeoutMs;
  }

  start(): void {
    this.#interval = setInterval(() => this.#pingAll(), this.#pingIntervalMs);
    this.#interval.unref();
  }

  stop(): void {
    clearInterval(this.#interval);
    for (const check of this.#checks) clearTimeout(check);
    this.#checks.clear();
  }

  #pingAll(): void {
    const round = (this.#round += 1);
    const pinged: ClientConnection[] = [];
    for (const connection of this.#connections) {
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
