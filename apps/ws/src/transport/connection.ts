import type { ClientRequestArgs } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocket, type ClientOptions, type RawData } from 'ws';
import type { Logger } from '@repo/log';
import { CLOSE_CODES, type ServerMessage } from '@repo/protocol';
import type { GatewayLimits } from '../limits.ts';
import type { DisconnectReason, GatewayMetrics } from '../metrics.ts';
import { parseClientMessage, type ParsedClientMessage } from './client-messages.ts';
import type { MessageRateLimiter, RateWindow } from './rate-limiter.ts';
import { encodeTextFrame, type WriteBatcher } from './text-frame.ts';

/** What every connection shares: handed in by the gateway, never looked up. */
export interface ConnectionDeps {
  readonly limits: GatewayLimits;
  readonly metrics: GatewayMetrics;
  readonly batcher: WriteBatcher;
  /** The message rate limit every socket is held to (each keeps its own window). */
  readonly rate: MessageRateLimiter;
  readonly logger: Logger;
  /** Told when any connection closed, after its own handlers (one function for all of them). */
  readonly onClosed: (connection: Connection) => void;
}

/**
 * The gateway's `ws` socket class (the server's `WebSocket` option). `ws` reports a socket's
 * events by calling its `emit`; this one hands them straight to the socket's connection. With
 * listeners instead, each socket's `_events` object takes four entries and grows to about 280
 * bytes per socket, for four functions every socket shares anyway.
 *
 * Even empty, an emitter's `_events` is a dictionary-mode object (about 180 bytes): with no
 * listener to hold, it is dropped. Node's EventEmitter creates it again on a first `on()`, but
 * this socket's events go to its connection only; listeners added to it are never called.
 *
 * `autoPong` is off on the server: `ws` would keep a closure per socket for its pong
 * callback; the connection answers pings itself (see `#pinged`).
 *
 * `close()` is overridden to let the connection time the closing handshake: `ws` calls it
 * both for our close frames and to answer the peer's.
 */
export class GatewaySocket extends WebSocket {
  /** Set by `Connection.serve`; events before it (the 'open' of the handshake) are not ours. */
  connection: Connection | null = null;

  constructor(
    address: string | URL | null,
    protocols?: string | string[] | ClientOptions | ClientRequestArgs,
    options?: ClientOptions | ClientRequestArgs,
  ) {
    // ws's own overloads, as one signature (the server passes null, undefined, its options).
    super(address as string, protocols as string[] | undefined, options);
    (this as unknown as { _events: unknown })._events = undefined;
  }

  override close(code?: number, data?: string | Buffer): void {
    super.close(code, data);
    const connection = this.connection;
    if (connection !== null) Connection.closing(connection);
  }

  override emit(event: string | symbol, a?: unknown, b?: unknown): boolean {
    const connection = this.connection;
    if (connection === null) return false;
    Connection.dispatch(connection, event, a, b);
    if (event === 'message' || event === 'pong' || event === 'ping') releaseReadChunks(this);
    return true;
  }
}

/**
 * Node caches a socket's peer address (`{ address, family, port }`, about 90 bytes with its
 * strings) on the first `remoteAddress` read, which the upgrade's address checks made, and keeps
 * it for the socket's life. Nothing reads it after the upgrade (the connection keeps its
 * `addressKey`); a later read, while the socket is open, asks the kernel again.
 */
function forgetPeerName(socket: Duplex): void {
  const cached = socket as Duplex & { _peername?: unknown };
  if (cached._peername !== undefined) cached._peername = undefined;
}

/** The part of `ws`'s frame parser (`Receiver`) that `releaseReadChunks` touches. */
interface ReceiverChunks {
  _buffers?: unknown;
  _bufferedBytes?: unknown;
}

/**
 * `ws` keeps a socket's unparsed chunks in an array that it pushes to and shifts from. Once a
 * chunk was pushed, the emptied array keeps a 17-slot backing store (152 bytes) for the
 * socket's life, and most sockets send a request or two and then only listen. When nothing is
 * buffered, a fresh empty array costs nothing; `ws` reads the field anew on every use. Guarded so
 * that a `ws` without these fields leaves it alone.
 */
function releaseReadChunks(ws: WebSocket): void {
  const receiver = (ws as unknown as { _receiver?: ReceiverChunks })._receiver;
  if (!receiver || receiver._bufferedBytes !== 0) return;
  const chunks = receiver._buffers;
  if (Array.isArray(chunks) && chunks.length === 0) receiver._buffers = [];
}

/**
 * Where a connection hands its traffic: the socket's session. Methods, not closures: an object
 * per socket that already exists costs nothing more, a closure per socket costs its memory.
 */
export interface ConnectionHandlers {
  /** One client request at a time, in arrival order; the next waits until this one settles. */
  onRequest(request: ParsedClientMessage): void | Promise<void>;
  /** The socket closed, whatever the reason; called once, after the connection let go of its buffers. */
  onClosed(): void;
}

/**
 * One client socket as a transport: the write path with its slow-consumer rules, the rate
 * limit, the request queue and the heartbeat's ping state. It knows nothing of users or
 * channels: the session decides what to write, the connection decides what happens to a frame
 * once it is handed over.
 *
 * Frames are written straight to the upgraded TCP socket (the one `ws` was handed) through the
 * batcher. `ws` writes its own control frames (ping, close) to the same socket synchronously,
 * because permessage-deflate is off, so frame order on the wire is kept.
 */
export class Connection implements RateWindow {
  readonly id: number;
  /** The key of the per-address connection cap this socket counts under; null when exempt. */
  readonly addressKey: string | null;
  readonly #ws: GatewaySocket;
  readonly #socket: Duplex;
  readonly #deps: ConnectionDeps;
  #handlers: ConnectionHandlers | null = null;
  // This socket's rate window (see MessageRateLimiter): fields here, not an object per socket.
  rateWindowStart = 0;
  rateCount = 0;
  rateRejected = 0;
  rateRejectedInWindow = false;
  /** True from a server ping until its pong. */
  #awaitingPong = false;
  /** The heartbeat round of the last ping sent. */
  #pingRound = 0;
  /**
   * Frames held while the socket is over the soft limit: the latest per key wins. Created on
   * first use: most sockets never hold anything, and idle memory per socket counts.
   */
  #conflated: Map<string, Buffer> | null = null;
  #conflatedBytes = 0;
  /** Flushes `#conflated` on 'drain'; made when first needed, like the map. */
  #onDrain: (() => void) | null = null;
  /**
   * Requests wait here while an earlier one (auth, a snapshot) is still being answered. Null
   * while empty: an array that once held a request keeps its backing store, and most sockets
   * send a request or two and then only listen.
   */
  #queue: ParsedClientMessage[] | null = null;
  #busy = false;
  /** Requests accepted and not yet answered: those in `#queue` and the one being answered. */
  #outstanding = 0;
  /**
   * While closing: the timer that destroys the socket `closeGraceMs` after its close frame, or
   * SLOW_CONSUMER when `ws`'s own, longer timer is left to do it (see `closeSlowConsumer`).
   */
  #closeTimer: NodeJS.Timeout | typeof SLOW_CONSUMER | null = null;

  constructor(id: number, ws: GatewaySocket, socket: Duplex, deps: ConnectionDeps, addressKey: string | null = null) {
    this.id = id;
    this.addressKey = addressKey;
    this.#ws = ws;
    this.#socket = socket;
    this.#deps = deps;
    forgetPeerName(socket);
  }

  /** Starts reading the socket: requests and the close go to `handlers` from now on. Called once. */
  serve(handlers: ConnectionHandlers): void {
    this.#handlers = handlers;
    this.#ws.connection = this;
  }

  /** An event of `connection`'s socket, from `GatewaySocket.emit`. */
  static dispatch(connection: Connection, event: string | symbol, a: unknown, b: unknown): void {
    switch (event) {
      case 'message': {
        const data = a as RawData;
        const isBinary = b as boolean;
        connection.#receive(() => parseClientMessage(data, isBinary), Date.now());
        return;
      }
      case 'pong':
        connection.markPong();
        return;
      case 'ping':
        connection.#pinged(a as Buffer);
        return;
      case 'error': {
        // Protocol errors (oversized frame → 1009, invalid UTF-8 → 1007): ws closes the socket itself.
        const err = a as Error & { code?: string };
        connection.#deps.logger.debug(
          { connection: connection.id, code: err.code, err: err.message },
          'websocket error',
        );
        return;
      }
      case 'close':
        connection.#deps.logger.debug({ connection: connection.id, code: a as number }, 'socket closed');
        connection.#dispose();
        connection.#handlers!.onClosed();
        connection.#deps.onClosed(connection);
        return;
      default:
        // 'open', 'upgrade' and the like: nothing to do.
        return;
    }
  }

  /**
   * Answers a client's ping (RFC 6455 §5.5.2), as `ws` would with `autoPong`. A peer that pings
   * without reading the pongs is a slow consumer like any other: past the hard limit it is
   * closed with 4008 (`ws` counted unwritten pongs instead, up to 60).
   */
  #pinged(data: Buffer): void {
    if (!this.isOpen) return;
    if (this.#socket.writableLength + this.#conflatedBytes + data.length > this.#deps.limits.hardBufferedBytes) {
      this.closeSlowConsumer();
      return;
    }
    this.#ws.pong(data, false);
  }

  get isOpen(): boolean {
    return this.#ws.readyState === WebSocket.OPEN;
  }

  // ---- requests ---------------------------------------------------------------------------

  /**
   * Takes one client frame. The rate limit is applied on arrival; accepted requests are then
   * answered strictly in order, so `auth` followed at once by `subscribe orders` works
   * without the client waiting for `auth_ok` (the design's own example does that). At most
   * `maxQueuedRequests` wait for their answer: a client that sends faster than it is answered
   * (a slow session store, a flood of `auth`) gets `rate_limited` instead of a queue that
   * grows with its rate, and is closed like any flooder if it keeps on.
   */
  #receive(parse: () => ParsedClientMessage, nowMs: number): void {
    const { rate } = this.#deps;
    let decision = rate.take(this, nowMs);
    const overflow = decision === 'accept' && this.#outstanding >= this.#deps.limits.maxQueuedRequests;
    if (overflow) decision = rate.reject(this);
    if (decision === 'close') {
      if (!this.isOpen) return;
      this.close(CLOSE_CODES.policyViolation, 'message rate limit exceeded', 'flood');
      // Stop reading: a flooder does not stop at our close frame, and every frame read until
      // the close grace ends would still be unmasked and decoded, stealing the event loop from
      // everyone else. Unread, its data waits in kernel buffers until the socket is destroyed
      // after `closeGraceMs`.
      this.#socket.pause();
      return;
    }
    // Parsed even when rejected, so the error can echo the request id and a client's pending
    // request fails at once instead of timing out; `floodCloseAfter` bounds that work.
    const request = parse();
    if (decision === 'reject') {
      const id = request.ok ? request.message.id : request.id;
      this.send({
        type: 'error',
        code: 'rate_limited',
        message: overflow
          ? 'too many requests waiting for an answer; wait for replies'
          : 'too many messages; slow down',
        ...(id === undefined ? {} : { id }),
      });
      return;
    }
    (this.#queue ??= []).push(request);
    this.#outstanding += 1;
    this.#deps.metrics.requestsQueued(1);
    if (!this.#busy) void this.#drainQueue();
  }

  async #drainQueue(): Promise<void> {
    this.#busy = true;
    try {
      while (this.#queue !== null && this.#queue.length > 0 && this.isOpen) {
        const request = this.#queue.shift()!;
        try {
          const pending = this.#handlers!.onRequest(request);
          if (pending) await pending;
        } catch (err) {
          // The handler answers its own failures; this only keeps the queue going.
          this.#deps.logger.error({ err, connection: this.id }, 'request handler threw');
        } finally {
          this.#answered(1);
        }
      }
    } finally {
      this.#busy = false;
      if (this.#queue?.length === 0) this.#queue = null;
    }
  }

  #answered(count: number): void {
    if (count === 0) return;
    this.#outstanding -= count;
    this.#deps.metrics.requestsQueued(-count);
  }

  // ---- writing ----------------------------------------------------------------------------

  /** Serialises a message for this socket alone and sends it. */
  send(message: ServerMessage): boolean {
    const sent = this.sendFrame(encodeTextFrame(JSON.stringify(message)));
    if (sent) {
      this.#deps.metrics.delivered(message.type);
      if (message.type === 'error') this.#deps.metrics.clientError(message.code);
    }
    return sent;
  }

  /**
   * Writes a frame that must not be dropped (a reply, an order or portfolio event). When it
   * would take the socket past the hard limit the socket is closed with 4008 instead: the event
   * is then never silently lost, the client knows to reconnect and reload.
   */
  sendFrame(frame: Buffer): boolean {
    if (!this.isOpen) return false;
    if (this.#socket.writableLength + this.#conflatedBytes + frame.length > this.#deps.limits.hardBufferedBytes) {
      this.closeSlowConsumer();
      return false;
    }
    this.#deps.batcher.write(this.#socket, frame);
    return true;
  }

  /**
   * Writes a frame that a newer one with the same `key` makes worthless (a price tick of a
   * symbol). While the socket is over the soft limit it is held instead, replacing the one held
   * for `key`; held frames are written when the socket drains. True when written now.
   */
  sendLatest(key: string, frame: Buffer): boolean {
    if (!this.isOpen) return false;
    const socket = this.#socket;
    if (this.#conflated === null) {
      // needDrain guarantees a 'drain' event will come to flush what we hold.
      if (socket.writableLength <= this.#deps.limits.softBufferedBytes || !socket.writableNeedDrain) {
        return this.sendFrame(frame);
      }
      this.#conflated = new Map();
      this.#onDrain ??= () => this.#flushConflated();
      socket.once('drain', this.#onDrain);
    }
    const previous = this.#conflated.get(key);
    if (previous) {
      this.#conflatedBytes -= previous.length;
      this.#deps.metrics.dropped('slow_consumer');
    }
    this.#conflated.set(key, frame);
    this.#conflatedBytes += frame.length;
    if (socket.writableLength + this.#conflatedBytes > this.#deps.limits.hardBufferedBytes) {
      this.closeSlowConsumer();
    }
    return false;
  }

  /**
   * Drops the held frames whose key `drop` accepts, unwritten and uncounted: their stream no
   * longer wants them (a subscription that dropped the symbol, or ended).
   */
  forgetLatest(drop: (key: string) => boolean): void {
    const held = this.#conflated;
    if (held === null) return;
    for (const [key, frame] of held) {
      if (!drop(key)) continue;
      held.delete(key);
      this.#conflatedBytes -= frame.length;
    }
  }

  #flushConflated(): void {
    const held = this.#conflated;
    this.#conflated = null;
    this.#conflatedBytes = 0;
    if (!held) return;
    let sent = 0;
    for (const [key, frame] of held) if (this.sendLatest(key, frame)) sent += 1;
    // Price ticks are the only frames that are conflated.
    this.#deps.metrics.delivered('price', sent);
  }

  /** Resolves once the send buffer is below the soft limit, or the socket closed. */
  whenDrained(): Promise<void> {
    const socket = this.#socket;
    if (socket.writableLength <= this.#deps.limits.softBufferedBytes || !socket.writableNeedDrain) {
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const done = () => {
        socket.off('drain', done);
        socket.off('close', done);
        resolve();
      };
      socket.on('drain', done);
      socket.on('close', done);
    });
  }

  // ---- heartbeat --------------------------------------------------------------------------

  /** Pings the peer for heartbeat `round`, unless it still owes the pong of an earlier one. */
  ping(round: number): void {
    if (this.#awaitingPong || !this.isOpen) return;
    this.#awaitingPong = true;
    this.#pingRound = round;
    this.#ws.ping();
  }

  /** The peer answered the last ping. */
  markPong(): void {
    this.#awaitingPong = false;
  }

  /**
   * Whether the ping of `round` is still unanswered. Never for a slow consumer being closed:
   * its ping is stuck behind the queue it is given `slowConsumerDrainMs` to read.
   */
  missedPong(round: number): boolean {
    return this.#awaitingPong && this.#pingRound === round && this.#closeTimer !== SLOW_CONSUMER;
  }

  // ---- lifecycle --------------------------------------------------------------------------

  /**
   * The closing handshake started (ours or the peer's): the peer has `closeGraceMs` to finish
   * it. `ws` destroys the socket on its own only after `slowConsumerDrainMs`, its close
   * timeout, which a slow consumer needs whole (see `closeSlowConsumer`).
   */
  static closing(connection: Connection): void {
    if (connection.#closeTimer !== null || connection.#ws.readyState !== WebSocket.CLOSING) return;
    connection.#closeTimer = setTimeout(terminateSocket, connection.#deps.limits.closeGraceMs, connection.#ws);
  }

  /** Closes with `code` (the peer has `closeGraceMs` to answer before the socket is destroyed). */
  close(code: number, reason: string, why: DisconnectReason): void {
    if (!this.isOpen) return;
    this.#deps.metrics.disconnected(why);
    this.#ws.close(code, reason);
  }

  /** Destroys the socket at once: for peers that stopped answering. */
  terminate(why: DisconnectReason): void {
    if (this.#ws.readyState === WebSocket.CLOSED) return;
    this.#deps.metrics.disconnected(why);
    this.#ws.terminate();
  }

  /**
   * Closes with 4008: the peer does not read what it is sent fast enough.
   *
   * The close frame can only follow the bytes already queued for the peer (up to
   * `hardBufferedBytes` in the process, and what the kernels on both ends hold), and nothing
   * handed to the socket can be taken back: a frame may be half written. A peer that stalls
   * for a while (a background tab, a frozen phone) reads the close frame only after all of it,
   * so the `closeGraceMs` of other closes would destroy the socket first, and the peer would
   * see 1006, reconnect at once and never learn to back off and reload. It gets
   * `slowConsumerDrainMs` instead; nothing more is queued meanwhile, so the memory it holds
   * only shrinks, and a dead peer is destroyed when that time is up.
   */
  closeSlowConsumer(): void {
    if (!this.isOpen) return;
    this.#deps.metrics.dropped('slow_consumer');
    // What we held for it will never be written: forget it now rather than on 'close'.
    this.#conflated = null;
    this.#conflatedBytes = 0;
    this.#closeTimer = SLOW_CONSUMER;
    this.close(CLOSE_CODES.slowConsumer, 'slow consumer', 'slow_consumer');
  }

  #dispose(): void {
    // Never answered; the one being answered (if any) is counted off when its handler settles.
    this.#answered(this.#queue?.length ?? 0);
    this.#queue = null;
    this.#conflated = null;
    this.#conflatedBytes = 0;
    if (this.#onDrain) this.#socket.off('drain', this.#onDrain);
    if (this.#closeTimer !== null && this.#closeTimer !== SLOW_CONSUMER) clearTimeout(this.#closeTimer);
  }
}

/** Marks a close that `ws`'s own timer ends (`#closeTimer`). */
const SLOW_CONSUMER = Symbol('slow consumer');

/** One function for every socket's close timer, so that no closure is made per close. */
function terminateSocket(ws: WebSocket): void {
  ws.terminate();
}
