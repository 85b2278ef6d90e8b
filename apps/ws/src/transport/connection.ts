import type { Duplex } from 'node:stream';
import { WebSocket } from 'ws';
import { CLOSE_CODES, type Channel, type ServerMessage } from '@repo/protocol';
import type { Logger } from '@repo/log';
import { parseClientMessage, type ParsedClientMessage } from './client-messages.ts';
import type { GatewayLimits } from '../limits.ts';
import type { DeliveredType, DisconnectReason, GatewayMetrics } from '../metrics.ts';
import { MessageRateLimiter } from './rate-limiter.ts';
import type { Session } from '../session/session.ts';
import { encodeTextFrame, type WriteBatcher } from './text-frame.ts';

/** An event held back while a subscription waits for its snapshot. */
export interface BufferedEvent {
  frame: Buffer;
  type: DeliveredType;
  /** The decoded event, for the snapshot merge to compare positions and timestamps. */
  event: { timestamp: string; version?: number | undefined; seq?: number | undefined; symbol?: string };
}

/** A live order event held during a replay. */
export interface HeldOrder {
  frame: Buffer;
  seq: number | undefined;
}

/** What happened to a live order event handed to `deliverOrder`. */
export type OrderDelivery = 'sent' | 'held' | 'duplicate' | 'gap' | 'closed';

/** What every connection shares: handed in by the gateway, never looked up. */
export interface ConnectionContext {
  readonly limits: GatewayLimits;
  readonly metrics: GatewayMetrics;
  readonly batcher: WriteBatcher;
  readonly logger: Logger;
  readonly onRequest: (connection: ClientConnection, request: ParsedClientMessage) => void | Promise<void>;
  readonly onRequestError: (connection: ClientConnection, err: unknown) => void;
  /** The socket closed (for whatever reason); called once. */
  readonly onClose: (connection: ClientConnection) => void;
}

/**
 * One client socket: its auth, its subscriptions, and the write path with the slow-consumer
 * rules. Routing lives in the gateway; this class decides only what happens to a frame once
 * the socket is known to be a recipient.
 *
 * Frames are written straight to the upgraded TCP socket (the one `ws` was handed) through the
 * batcher. `ws` writes its own control frames (ping, close) to the same socket synchronously,
 * because permessage-deflate is off, so frame order on the wire is kept.
 */
export class ClientConnection {
  readonly id: number;
  readonly #ws: WebSocket;
  readonly #socket: Duplex;

  /** Set by a successful `auth`; cleared by revocation or expiry. Never taken from the client. */
  userId: number | null = null;
  session: Session | null = null;
  /** Channels this socket is subscribed to, including those still waiting for their snapshot. */
  readonly channels = new Set<Channel>();
  /** True from a server ping until its pong. */
  #awaitingPong = false;
  /** The heartbeat round of the last ping sent. */
  #pingRound = 0;

  readonly #context: ConnectionContext;
  readonly #rate: MessageRateLimiter;
  #expiryTimer: NodeJS.Timeout | undefined;
  /** Live events that arrived while a channel's snapshot was being read, keyed for conflation. */
  /** Created on first use: most sockets never hold anything, and idle memory per socket counts. */
  #pending: Map<Channel, Map<string | number, BufferedEvent>> | null = null;
  #pendingOrdinal = 0;
  /** Price frames held while the socket is over the soft limit: latest per symbol wins. */
  #conflated: Map<string, Buffer> | null = null;
  #conflatedBytes = 0;
  /**
   * Order delivery position (issue 5): the highest `seq` written to this socket, null while
   * unknown (no history to ask). An order event at or below it is a duplicate and is dropped;
   * one past `orderSeq + 1` reveals a gap that is filled from history before it goes out.
   */
  orderSeq: number | null = null;
  /** Bumped by every `orders` (re)subscription and unsubscription: a stale catch-up stops. */
  orderEpoch = 0;
  /** Live order events held while a replay or gap fill runs; null when delivering live. */
  #heldOrders: HeldOrder[] | null = null;
  #heldOrderBytes = 0;
  /** Highest portfolio `version` written to this socket: an older one is never sent after it. */
  portfolioVersion: number | null = null;
  /** Requests wait here while an earlier one (auth, a snapshot) is still being answered. */
  #queue: ParsedClientMessage[] = [];
  #busy = false;

  constructor(id: number, ws: WebSocket, socket: Duplex, context: ConnectionContext) {
    this.id = id;
    this.#ws = ws;
    this.#socket = socket;
    this.#context = context;
    const { messagesPerWindow, rateWindowMs, floodCloseAfter } = context.limits;
    this.#rate = new MessageRateLimiter(messagesPerWindow, rateWindowMs, floodCloseAfter);
    ws.on('message', (data, isBinary) => this.#receive(() => parseClientMessage(data, isBinary), Date.now()));
    ws.on('pong', () => this.markPong());
    ws.on('error', (err: Error & { code?: string }) => {
      // Protocol errors (oversized frame → 1009, invalid UTF-8 → 1007): ws closes the socket itself.
      context.logger.debug({ connection: id, code: err.code, err: err.message }, 'websocket error');
    });
    ws.on('close', (code) => {
      context.logger.debug({ connection: id, code }, 'socket closed');
      this.#dispose();
      context.onClose(this);
    });
  }

  get isOpen(): boolean {
    return this.#ws.readyState === WebSocket.OPEN;
  }

  // ---- requests ---------------------------------------------------------------------------

  /**
   * Takes one client frame. The rate limit is applied on arrival; accepted requests are then
   * answered strictly in order, so `auth` followed at once by `subscribe orders` works
   * without the client waiting for `auth_ok` (the design's own example does that).
   */
  #receive(parse: () => ParsedClientMessage, nowMs: number): void {
    const decision = this.#rate.take(nowMs);
    if (decision === 'close') {
      if (this.#ws.readyState !== WebSocket.OPEN) return;
      this.close(CLOSE_CODES.policyViolation, 'message rate limit exceeded', 'flood');
      // Stop reading: a flooder does not stop at our close frame, and every frame read until
      // the close grace ends would still be unmasked and decoded, stealing the event loop from
      // everyone else (measured: seconds of delay for all price subscribers). Unread, its data
      // waits in kernel buffers until the socket is destroyed after `closeGraceMs`.
      this.#socket.pause();
      return;
    }
    // Parsed even when rejected, so the error can echo the request id and a client's pending
    // request fails at once instead of timing out; `floodCloseAfter` bounds that work.
    const request = parse();
    if (decision === 'reject') {
      const id = request.ok ? request.message.id : request.id;
      this.sendMessage({
        type: 'error',
        code: 'rate_limited',
        message: 'too many messages; slow down',
        ...(id === undefined ? {} : { id }),
      });
      return;
    }
    this.#queue.push(request);
    if (!this.#busy) void this.#drainQueue();
  }

  async #drainQueue(): Promise<void> {
    this.#busy = true;
    try {
      while (this.#queue.length > 0 && this.#ws.readyState === WebSocket.OPEN) {
        const request = this.#queue.shift()!;
        try {
          const pending = this.#context.onRequest(this, request);
          if (pending) await pending;
        } catch (err) {
          this.#context.onRequestError(this, err);
        }
      }
    } finally {
      this.#busy = false;
    }
  }

  // ---- writing ----------------------------------------------------------------------------

  /** Serialises a reply for this socket alone and sends it. */
  sendMessage(message: ServerMessage): boolean {
    const sent = this.sendFrame(encodeTextFrame(JSON.stringify(message)));
    if (sent) {
      this.#context.metrics.delivered(message.type);
      if (message.type === 'error') this.#context.metrics.clientError(message.code);
    }
    return sent;
  }

  /**
   * Writes a frame that must not be dropped (a reply, an order or portfolio event). When it
   * would take the socket past the hard limit the socket is closed with 4008 instead: the event
   * is then never silently lost, the client knows to reconnect and reload.
   */
  sendFrame(frame: Buffer): boolean {
    if (this.#ws.readyState !== WebSocket.OPEN) return false;
    if (this.#socket.writableLength + this.#conflatedBytes + frame.length > this.#context.limits.hardBufferedBytes) {
      this.#closeSlowConsumer();
      return false;
    }
    this.#context.batcher.write(this.#socket, frame);
    return true;
  }

  /**
   * Writes a price tick, or holds it while the socket is over the soft limit, where a newer
   * tick of the same symbol replaces it. Held ticks are written when the socket drains.
   */
  sendPrice(symbol: string, frame: Buffer): boolean {
    if (this.#ws.readyState !== WebSocket.OPEN) return false;
    const socket = this.#socket;
    if (this.#conflated === null) {
      // needDrain guarantees a 'drain' event will come to flush what we hold.
      if (socket.writableLength <= this.#context.limits.softBufferedBytes || !socket.writableNeedDrain) {
        return this.sendFrame(frame);
      }
      this.#conflated = new Map();
      socket.once('drain', this.#flushConflated);
    }
    const previous = this.#conflated.get(symbol);
    if (previous) {
      this.#conflatedBytes -= previous.length;
      this.#context.metrics.dropped('slow_consumer');
    }
    this.#conflated.set(symbol, frame);
    this.#conflatedBytes += frame.length;
    if (socket.writableLength + this.#conflatedBytes > this.#context.limits.hardBufferedBytes) {
      this.#closeSlowConsumer();
    }
    return false;
  }

  readonly #flushConflated = (): void => {
    const held = this.#conflated;
    this.#conflated = null;
    this.#conflatedBytes = 0;
    if (!held) return;
    let sent = 0;
    for (const [symbol, frame] of held) if (this.sendPrice(symbol, frame)) sent += 1;
    this.#context.metrics.delivered('price', sent);
  };

  /** Delivers a live price tick: held while `prices` waits for its snapshot, else sent. */
  deliverPrice(symbol: string, frame: Buffer, event: BufferedEvent['event']): boolean {
    const pending = this.#pending?.get('prices');
    if (pending) {
      pending.delete(symbol); // re-insert so the newest tick goes last
      pending.set(symbol, { frame, type: 'price', event });
      return false;
    }
    return this.sendPrice(symbol, frame);
  }

  /**
   * Delivers a live order event in `seq` order: held while a replay runs, dropped when this
   * socket already has it, held (and reported as `gap`) when events before it are missing.
   */
  deliverOrder(frame: Buffer, seq: number | undefined): OrderDelivery {
    if (this.#ws.readyState !== WebSocket.OPEN) return 'closed';
    if (this.#heldOrders) {
      this.#heldOrders.push({ frame, seq });
      // A replay that cannot keep up with a flood of live events must not grow without bound.
      this.#heldOrderBytes += frame.length;
      if (this.#heldOrderBytes > this.#context.limits.hardBufferedBytes) {
        this.#closeSlowConsumer();
        return 'closed';
      }
      return 'held';
    }
    if (seq !== undefined && this.orderSeq !== null) {
      if (seq <= this.orderSeq) return 'duplicate';
      if (seq > this.orderSeq + 1) {
        this.#heldOrders = [{ frame, seq }];
        return 'gap';
      }
    }
    return this.sendOrderFrame(frame, seq) ? 'sent' : 'closed';
  }

  /** Writes an order frame and advances the position. */
  sendOrderFrame(frame: Buffer, seq: number | undefined): boolean {
    if (!this.sendFrame(frame)) return false;
    if (seq !== undefined) this.orderSeq = Math.max(this.orderSeq ?? 0, seq);
    return true;
  }

  /** Starts holding live order events (a replay or gap fill begins). */
  holdOrders(): void {
    this.#heldOrders ??= [];
  }

  get holdingOrders(): boolean {
    return this.#heldOrders !== null;
  }

  /** The held order events, oldest `seq` first; holding continues until `releaseOrders`. */
  takeHeldOrders(): HeldOrder[] {
    const held = this.#heldOrders ?? [];
    if (this.#heldOrders) this.#heldOrders = [];
    this.#heldOrderBytes = 0;
    return held.sort((a, b) => (a.seq ?? 0) - (b.seq ?? 0));
  }

  /** Puts events back at the front of the hold (a gap remains before them). */
  reholdOrders(events: HeldOrder[]): void {
    this.#heldOrders = [...events, ...(this.#heldOrders ?? [])];
    for (const event of events) this.#heldOrderBytes += event.frame.length;
  }

  /** Delivers live again. */
  releaseOrders(): void {
    this.#heldOrders = null;
    this.#heldOrderBytes = 0;
  }

  /** Forgets the order stream (unsubscribe, another user): a running catch-up stops. */
  resetOrders(): void {
    this.#heldOrders = null;
    this.#heldOrderBytes = 0;
    this.orderSeq = null;
    this.orderEpoch += 1;
  }

  /** Writes a portfolio frame unless this socket already has that version or a newer one. */
  sendPortfolioFrame(frame: Buffer, version: number | undefined): boolean {
    if (version !== undefined && this.portfolioVersion !== null && version <= this.portfolioVersion) return false;
    if (!this.sendFrame(frame)) return false;
    if (version !== undefined) this.portfolioVersion = version;
    return true;
  }

  /** Delivers a live private event: held while its channel waits for a snapshot, else sent. */
  deliverPrivate(
    channel: 'orders' | 'portfolio',
    frame: Buffer,
    type: DeliveredType,
    event: BufferedEvent['event'],
  ): boolean {
    const pending = this.#pending?.get(channel);
    if (pending) {
      // A portfolio is the user's whole state: only the latest one matters.
      const key = channel === 'portfolio' ? 'latest' : (this.#pendingOrdinal += 1);
      pending.delete(key);
      pending.set(key, { frame, type, event });
      return false;
    }
    return channel === 'portfolio' ? this.sendPortfolioFrame(frame, event.version) : this.sendFrame(frame);
  }

  /** Starts holding live events of `channel` until `endPending` (the snapshot is being read). */
  beginPending(channel: Channel): void {
    (this.#pending ??= new Map()).set(channel, new Map());
  }

  /** Stops holding `channel` and returns what was held, oldest first; null if it was cancelled. */
  endPending(channel: Channel): BufferedEvent[] | null {
    const held = this.#pending?.get(channel);
    if (!held) return null;
    this.#pending!.delete(channel);
    return [...held.values()];
  }

  /** Drops whatever `channel` held (unsubscribe, revocation): the snapshot will not be sent. */
  cancelPending(channel: Channel): void {
    this.#pending?.delete(channel);
  }

  // ---- lifecycle --------------------------------------------------------------------------

  /** Arms the session-expiry timer; `setTimeout` cannot wait more than 2^31-1 ms, so it re-arms. */
  armExpiry(expiresAt: Date, onExpire: () => void): void {
    this.clearExpiry();
    const remaining = expiresAt.getTime() - Date.now();
    if (remaining <= 0) {
      onExpire();
      return;
    }
    const step = Math.min(remaining, 2 ** 31 - 1);
    this.#expiryTimer = setTimeout(() => {
      this.#expiryTimer = undefined;
      this.armExpiry(expiresAt, onExpire);
    }, step);
    this.#expiryTimer.unref();
  }

  clearExpiry(): void {
    if (this.#expiryTimer) clearTimeout(this.#expiryTimer);
    this.#expiryTimer = undefined;
  }

  /** Closes with `code` (the peer has `closeGraceMs` to answer before the socket is destroyed). */
  close(code: number, reason: string, why: DisconnectReason): void {
    if (this.#ws.readyState !== WebSocket.OPEN) return;
    this.#context.metrics.disconnected(why);
    this.#ws.close(code, reason);
  }

  /** Destroys the socket at once: for peers that stopped answering. */
  terminate(why: DisconnectReason): void {
    if (this.#ws.readyState === WebSocket.CLOSED) return;
    this.#context.metrics.disconnected(why);
    this.#ws.terminate();
  }

  #closeSlowConsumer(): void {
    if (this.#ws.readyState !== WebSocket.OPEN) return;
    this.#context.metrics.dropped('slow_consumer');
    // What we held for it will never be written: forget it now rather than on 'close'.
    this.#conflated = null;
    this.#conflatedBytes = 0;
    this.close(CLOSE_CODES.slowConsumer, 'slow consumer', 'slow_consumer');
  }

  // ---- heartbeat ---------------------------------------------------------------------------

  /** Pings the peer for heartbeat `round`, unless it still owes the pong of an earlier one. */
  ping(round: number): void {
    if (this.#awaitingPong || this.#ws.readyState !== WebSocket.OPEN) return;
    this.#awaitingPong = true;
    this.#pingRound = round;
    this.#ws.ping();
  }

  /** The peer answered the last ping. */
  markPong(): void {
    this.#awaitingPong = false;
  }

  /** Whether the ping of `round` is still unanswered. */
  missedPong(round: number): boolean {
    return this.#awaitingPong && this.#pingRound === round;
  }

  /** Resolves once the send buffer is below the soft limit, or the socket closed. */
  whenDrained(): Promise<void> {
    const socket = this.#socket;
    if (socket.writableLength <= this.#context.limits.softBufferedBytes || !socket.writableNeedDrain) {
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

  /** Releases timers and buffers once the socket closed. */
  #dispose(): void {
    this.clearExpiry();
    this.#pending = null;
    this.#heldOrders = null;
    this.orderEpoch += 1;
    this.#queue = [];
    this.#conflated = null;
    this.#conflatedBytes = 0;
    this.#socket.off('drain', this.#flushConflated);
  }
}
