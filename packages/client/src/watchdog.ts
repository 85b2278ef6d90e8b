interface WatchdogOptions {
  /** Ping after this long without any frame from the server, in ms. */
  pingIntervalMs: number;
  /** Give up when no frame at all arrived this long after a ping, in ms. */
  pongTimeoutMs: number;
  /** Monotonic clock in ms. */
  now: () => number;
  /** Sends the protocol's `{"type":"ping"}` on the watched socket. */
  sendPing: () => void;
  /** The socket is dead: called once, after which the watchdog is stopped. */
  onDead: () => void;
}

/**
 * Notices a connection that died without closing. A browser never sees WebSocket ping frames,
 * and a half-open TCP connection (a gateway that froze, a NAT that forgot us) can stay "open"
 * for many minutes, so the client watches its own traffic: after `pingIntervalMs` with no frame
 * it sends the protocol's `ping`, and when no frame at all (the pong or anything else) arrives
 * within `pongTimeoutMs` after it, the socket is dead.
 *
 * One timer per socket, re-armed when it fires or when a ping is answered: otherwise
 * `frameReceived()` just notes the time, so a busy price stream costs no timer churn and never
 * causes a ping.
 */
export class Watchdog {
  readonly #options: WatchdogOptions;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #stopped = false;
  #lastFrameAt = 0;
  /** When the unanswered ping went out; undefined while none is outstanding. */
  #pingSentAt: number | undefined;

  constructor(options: WatchdogOptions) {
    this.#options = options;
    this.#lastFrameAt = options.now();
    this.#arm(options.pingIntervalMs);
  }

  /** Any frame from the server proves the connection alive. */
  frameReceived(): void {
    this.#lastFrameAt = this.#options.now();
    if (this.#pingSentAt === undefined) return;
    // The ping is answered: the pong deadline is void, the next ping is an interval away.
    this.#pingSentAt = undefined;
    clearTimeout(this.#timer);
    this.#arm(this.#options.pingIntervalMs);
  }

  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #arm(delayMs: number): void {
    if (this.#stopped) return;
    this.#timer = setTimeout(this.#check, delayMs);
  }

  readonly #check = (): void => {
    this.#timer = undefined;
    const { pingIntervalMs, pongTimeoutMs, now } = this.#options;
    const at = now();
    if (this.#pingSentAt !== undefined) {
      // No frame since the ping (the first one clears it). Timers may fire a little early by
      // the monotonic clock; only a full deadline counts.
      const left = this.#pingSentAt + pongTimeoutMs - at;
      if (left > 0) return this.#arm(left);
      this.#stopped = true;
      this.#options.onDead();
      return;
    }
    const quietFor = at - this.#lastFrameAt;
    if (quietFor < pingIntervalMs) return this.#arm(pingIntervalMs - quietFor);
    this.#pingSentAt = at;
    this.#options.sendPing();
    this.#arm(pongTimeoutMs);
  };
}
