import { createServer, type Server, type Socket } from 'node:net';

/** A worker the primary hands accepted sockets to. */
export interface DispatchTarget {
  readonly id: number;
  /** Sends `socket` to the worker; `done` once it has left this process, or with why it could not. */
  send(socket: Socket, done: (err: Error | null) => void): void;
}

/** Why the primary closed an accepted socket without handing it to a worker. */
export type ShedReason = 'queue_full' | 'waited_too_long' | 'handoff_failed';

export interface DispatcherOptions {
  /** Sockets waiting for a worker, at most: the oldest is closed to make room. */
  maxQueued?: number;
  /** A socket that waited this long for a worker is closed instead of handed over. */
  maxWaitMs?: number;
  /** Handoffs under way per worker (Node sends one handle at a time per channel; the next waits queued). */
  perTarget?: number;
  onShed?: (reason: ShedReason) => void;
  now?: () => number;
}

const DISPATCH_DEFAULTS = { maxQueued: 2048, maxWaitMs: 3000, perTarget: 2 } as const;

interface Waiting {
  socket: Socket;
  at: number;
}

interface Slot {
  target: DispatchTarget;
  inFlight: number;
  /** The sockets of those handoffs: a worker that dies with them never answers, and they are closed. */
  sending: Set<Socket>;
}

/**
 * The gateway node's front door: the primary accepts every connection on `WS_PORT` and hands
 * each, unread, to a worker (`DispatchTarget`), preferring the worker with the fewest handoffs
 * under way, so a worker whose loop is busy takes fewer.
 *
 * It replaces node:cluster's round-robin, which queues accepted sockets in the primary without
 * bound: in a reconnect storm that queue grew to the process's descriptor limit, every socket
 * in it waited longer than its client's upgrade timeout, and the workers spent the storm on
 * connections whose clients had already given up, so it never settled. Here the queue is
 * bounded in length and in age: a socket that waited `maxWaitMs` (well under a client's
 * timeout) is closed unread, and a full queue closes its oldest to take the newest. A client
 * whose socket is closed retries on its backoff; one that is handed over is served while it
 * still waits for the answer.
 */
export class ConnectionDispatcher {
  readonly #server: Server;
  readonly #slots = new Map<number, Slot>();
  readonly #maxQueued: number;
  readonly #maxWaitMs: number;
  readonly #perTarget: number;
  readonly #onShed: (reason: ShedReason) => void;
  readonly #now: () => number;
  /** Oldest first from `#head`; compacted now and then. */
  #queue: Waiting[] = [];
  #head = 0;
  /** Rotates the first worker looked at, so ties go round. */
  #turn = 0;
  #closed = false;

  constructor(options: DispatcherOptions = {}) {
    this.#maxQueued = options.maxQueued ?? DISPATCH_DEFAULTS.maxQueued;
    this.#maxWaitMs = options.maxWaitMs ?? DISPATCH_DEFAULTS.maxWaitMs;
    this.#perTarget = options.perTarget ?? DISPATCH_DEFAULTS.perTarget;
    this.#onShed = options.onShed ?? (() => {});
    this.#now = options.now ?? (() => performance.now());
    // Paused: the worker reads the request, so it must still be in the kernel's buffer.
    this.#server = createServer({ pauseOnConnect: true, noDelay: true }, (socket) => this.#arrived(socket));
    // An accepted socket that fails before it is handed over (a reset) has nothing to tell.
    this.#server.on('connection', (socket) => socket.on('error', ignore));
  }

  /** Listens on `port` (0: any free one); resolves with the port. */
  listen(port: number, host: string): Promise<number> {
    return new Promise((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(port, host, () => {
        this.#server.off('error', reject);
        const address = this.#server.address();
        resolve(typeof address === 'object' && address ? address.port : port);
      });
    });
  }

  /** A worker that takes connections from now on. */
  add(target: DispatchTarget): void {
    this.#slots.set(target.id, { target, inFlight: 0, sending: new Set() });
    this.#pump();
  }

  /**
   * A worker that takes no more (it exited, or is stopping). The sockets of its unanswered
   * handoffs are closed: Node holds them, waiting for an acknowledgement a dead worker never
   * sends (closing one that did reach the worker only drops the primary's reference).
   */
  remove(id: number): void {
    const slot = this.#slots.get(id);
    if (!slot) return;
    this.#slots.delete(id);
    for (const socket of slot.sending) socket.destroy();
    slot.sending.clear();
  }

  /** Sockets waiting for a worker now. */
  get queued(): number {
    return this.#queue.length - this.#head;
  }

  /**
   * Stops accepting (the listening socket is closed at once) and closes every socket still
   * waiting. The server's 'close' event is not waited for: its count of connections is never
   * brought down for the sockets handed over (see `#arrived`), so it never comes.
   */
  close(): void {
    this.#closed = true;
    for (let i = this.#head; i < this.#queue.length; i++) this.#queue[i]!.socket.destroy();
    this.#queue = [];
    this.#head = 0;
    if (this.#server.listening) this.#server.close();
  }

  #arrived(socket: Socket): void {
    // Sent with its server set, Node has the worker track the socket for that server's close()
    // (a 'close' listener per socket: about 300 B of heap each in a worker, measured at 1,000
    // sockets). Without it the server's count of connections only grows, which nothing here
    // reads (no maxConnections, no wait for 'close').
    (socket as Socket & { server: unknown }).server = null;
    if (this.#closed) {
      socket.destroy();
      return;
    }
    if (this.queued >= this.#maxQueued) this.#shed(this.#take()!.socket, 'queue_full');
    this.#queue.push({ socket, at: this.#now() });
    this.#pump();
  }

  #pump(): void {
    while (this.queued > 0) {
      const slot = this.#freeSlot();
      if (!slot) return;
      const { socket, at } = this.#take()!;
      if (this.#now() - at > this.#maxWaitMs) {
        this.#shed(socket, 'waited_too_long');
        continue;
      }
      if (socket.destroyed) continue;
      slot.inFlight += 1;
      slot.sending.add(socket);
      let settled = false;
      let returned = false;
      slot.target.send(socket, (err) => {
        if (settled) return;
        settled = true;
        slot.inFlight -= 1;
        slot.sending.delete(socket);
        if (err) {
          // The channel is gone (the worker is dying): it takes no more, and a socket still
          // here goes back to the head of the queue for another worker.
          this.remove(slot.target.id);
          if ((socket as Socket & { _handle: unknown })._handle) this.#requeue({ socket, at });
          else this.#shed(socket, 'handoff_failed');
        }
        // An answer given at once is this loop's to go on with.
        if (returned) this.#pump();
      });
      returned = true;
    }
  }

  /** The worker with the fewest handoffs under way, below `perTarget`; ties go round. */
  #freeSlot(): Slot | undefined {
    let best: Slot | undefined;
    const slots = [...this.#slots.values()];
    for (let i = 0; i < slots.length; i++) {
      const slot = slots[(this.#turn + i) % slots.length]!;
      if (slot.inFlight < this.#perTarget && (!best || slot.inFlight < best.inFlight)) best = slot;
    }
    this.#turn += 1;
    return best;
  }

  #requeue(waiting: Waiting): void {
    if (this.#head > 0) this.#queue[--this.#head] = waiting;
    else this.#queue.unshift(waiting);
  }

  #take(): Waiting | undefined {
    if (this.#head >= this.#queue.length) return undefined;
    const waiting = this.#queue[this.#head]!;
    this.#head += 1;
    if (this.#head >= 1024 && this.#head * 2 >= this.#queue.length) {
      this.#queue = this.#queue.slice(this.#head);
      this.#head = 0;
    }
    return waiting;
  }

  #shed(socket: Socket, reason: ShedReason): void {
    socket.destroy();
    this.#onShed(reason);
  }
}

function ignore(): void {}
