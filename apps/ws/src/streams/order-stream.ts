import { CLOSE_CODES, type SubscribeRequest } from '@repo/protocol';
import { encodeTextFrame } from '../transport/text-frame.ts';
import { HistoryBusyError } from './history-reader.ts';
import type { OrderChannel } from './order-channel.ts';
import { decodeHistoryEvent, type OrderHistoryPage } from './order-history.ts';
import { dropMalformed, type Reply, type Stream, type StreamOwner, type StreamSink } from './stream.ts';

export type OrderKind = 'order_filled' | 'order_rejected';

/** A stream that may write only after certain order events went out (the portfolio reflecting them). */
export interface OrderFollower {
  /** The order stream moved on (wrote what was awaited, or closed): look again. */
  orderProgress(): void;
  /**
   * The history does not hold the order event awaited (read twice): it will never go out on
   * this socket, so what waits for it refers to an order this database does not have.
   */
  orderUnreachable(): void;
}

/** An order event, decoded and framed once for all of its user's sockets. */
export interface OrderEvent {
  readonly kind: OrderKind;
  /** The user's order-event number; absent on events from publishers that do not number them. */
  readonly seq: number | undefined;
  readonly frame: Buffer;
}

/**
 * One socket's `orders` subscription: its position (the highest `seq` written), and the live
 * events held while a replay or gap fill runs.
 *
 * A live event at or below the position is a duplicate and is dropped; one past `position + 1`
 * reveals a gap, which is read from history before it goes out. When the history no longer holds
 * what is missing, or cannot be read, the socket is closed (1011): the client reconnects with
 * `since` and gets `recovered:false`, so it reloads over REST rather than miss anything.
 */
export class OrderStream implements Stream<OrderEvent> {
  readonly channel = 'orders';
  readonly userId: number;
  readonly #sink: StreamSink;
  readonly #owner: StreamOwner;
  readonly #kind: OrderChannel;
  #closed = false;
  /** Bumped by every (re)start and by close: a catch-up that began before stops. */
  #epoch = 0;
  /** The epoch `close` ended: an `open` of that epoch was cut short by it, not by a newer `open`. */
  #closedEpoch = -1;
  /** The highest `seq` written; null while unknown (no history to ask). */
  #position: number | null = null;
  /** Live events held while a replay or gap fill runs; null when delivering live. */
  #held: OrderEvent[] | null = null;
  #heldBytes = 0;
  /** The broker came back while a catch-up ran: it reads once more before going live. */
  #recoverOwed = false;
  /** Waits for `#target` to be written; told once it is (or once this stream closed). */
  #follower: OrderFollower | null = null;
  /** The `seq` the follower waits for: a catch-up is not over before it is written. */
  #target = 0;

  constructor(sink: StreamSink, owner: StreamOwner, kind: OrderChannel, userId: number) {
    this.#sink = sink;
    this.#owner = owner;
    this.#kind = kind;
    this.userId = userId;
  }

  /**
   * `subscribe orders [since]`. The reply says where the stream stands (`seq`) and, with
   * `since`, whether the history still reaches back to it (`recovered`); then the replay, then
   * the events held meanwhile, then live. A socket never gets a `seq` twice or out of order.
   */
  async open(request: SubscribeRequest, reply: Reply): Promise<void> {
    // Subscribing again starts the stream afresh: no position, nothing held, no catch-up.
    this.#restart();
    const history = this.#kind.history;
    if (!history) {
      reply({ type: 'subscribed', channel: 'orders' });
      return;
    }
    const epoch = this.#epoch;
    this.#held = [];
    const { since } = request;
    let page: OrderHistoryPage;
    try {
      // Without `since` only the latest seq is needed: read past every event. Refusable: in a
      // storm a new subscription is turned down at once (rate_limited) rather than queued.
      page = await history.read(this.userId, since ?? Number.MAX_SAFE_INTEGER, { refusable: true });
    } catch (err) {
      if (!this.#isCurrent(epoch)) return this.#answerCutShort(epoch, reply);
      this.#kind.deps.dependencyWarning.warn({ err: (err as Error).message }, 'order history read failed');
      if (since === undefined) {
        // A fresh subscription can start without knowing the position: the first event sets it.
        reply({ type: 'subscribed', channel: 'orders' });
        this.#writeHeld();
        this.#goLive();
        return;
      }
      this.#owner.ended(this);
      reply(
        err instanceof HistoryBusyError
          ? { type: 'error', code: 'rate_limited', message: 'too many order history reads waiting; retry shortly' }
          : { type: 'error', code: 'internal_error', message: 'order history is unavailable right now; retry' },
      );
      return;
    }
    if (!this.#isCurrent(epoch)) return this.#answerCutShort(epoch, reply);
    const latestSeq = page.latestSeq;
    if (since === undefined) {
      this.#position = latestSeq;
      reply({ type: 'subscribed', channel: 'orders', seq: latestSeq });
      return this.#catchUp(epoch, null);
    }
    const recovered =
      since === latestSeq || (since < latestSeq && page.oldestSeq !== null && page.oldestSeq <= since + 1);
    reply({ type: 'subscribed', channel: 'orders', recovered, seq: latestSeq });
    if (!recovered) {
      // The client reloads over REST, which shows everything up to `latestSeq`; live goes on from there.
      this.#position = latestSeq;
      return this.#catchUp(epoch, null);
    }
    this.#position = since;
    return this.#catchUp(epoch, page);
  }

  /** A live event: written in `seq` order, held while a catch-up runs, dropped when already written. */
  deliver(event: OrderEvent): boolean {
    if (this.#closed || !this.#sink.isOpen) return false;
    if (this.#held !== null) {
      this.#held.push(event);
      // A replay that cannot keep up with a flood of live events must not grow without bound.
      this.#heldBytes += event.frame.length;
      if (this.#heldBytes > this.#kind.deps.limits.hardBufferedBytes) this.#sink.closeSlowConsumer();
      return false;
    }
    const { seq } = event;
    if (seq !== undefined && this.#position !== null) {
      if (seq <= this.#position) {
        this.#kind.deps.metrics.dropped('duplicate');
        return false;
      }
      if (seq > this.#position + 1) {
        this.#held = [event];
        this.#heldBytes = event.frame.length;
        this.#fillGap();
        return false;
      }
    }
    return this.#write(event.frame, seq);
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#closedEpoch = this.#epoch;
    this.#restart();
    this.#kind.leave(this);
    const follower = this.#follower;
    this.#follower = null;
    follower?.orderProgress();
  }

  /**
   * Whether order event `seq` has gone out on this socket, as far as the stream can tell: not
   * while a replay or gap fill runs; yes when the position is past it, is unknown (no history
   * was readable), or there is no history at all (live events then come in the broker's order).
   */
  reached(seq: number): boolean {
    if (this.#closed || !this.#kind.history) return true;
    if (this.#held !== null) return false;
    return this.#position === null || this.#position >= seq;
  }

  /**
   * `follower` waits until `reached(seq)`. A live stream behind `seq` has a gap (the event was
   * lost on the way, or is not published yet): it is filled from the history. When the history
   * does not hold `seq` either, and no live event waits past a gap, the follower is told
   * (`orderUnreachable`) and the stream goes on live: the socket is not closed, since every
   * resubscription would wait for the same missing event again. One follower per stream,
   * waiting for the highest `seq` asked.
   */
  waitFor(seq: number, follower: OrderFollower): void {
    this.#follower = follower;
    if (seq > this.#target) this.#target = seq;
    if (this.#held === null && this.#position !== null && this.#position < seq) {
      this.#held = [];
      void this.#catchUp(this.#epoch, null);
    }
  }

  /** `follower` no longer waits (it closed). */
  unfollow(follower: OrderFollower): void {
    if (this.#follower !== follower) return;
    this.#follower = null;
    this.#target = 0;
  }

  /**
   * Checks the history for what was published while the broker was away. A catch-up already
   * running (a replay, a gap fill) may have read before those events were committed: it reads
   * once more before it goes live.
   */
  recover(): void {
    if (!this.#kind.history) return;
    if (this.#held !== null) {
      this.#recoverOwed = true;
      return;
    }
    if (this.#position === null) return;
    this.#held = [];
    void this.#catchUp(this.#epoch, 'read');
  }

  #restart(): void {
    this.#epoch += 1;
    this.#recoverOwed = false;
    this.#position = null;
    this.#held = null;
    this.#heldBytes = 0;
    this.#target = 0;
  }

  /**
   * The `open` of `epoch` lost its stream while the history was read. A newer `open` answers for
   * itself; a closed socket hears nothing. Closed under this very `open` with the socket up, the
   * session ended (revoked, expired): requests are answered one at a time, so no unsubscribe or
   * subscribe of the client's can have come in between. Every request gets an answer.
   */
  #answerCutShort(epoch: number, reply: Reply): void {
    if (!this.#closed || this.#closedEpoch !== epoch || !this.#sink.isOpen) return;
    reply({ type: 'error', code: 'auth_required', message: 'authenticate before subscribing to orders' });
  }

  #isCurrent(epoch: number): boolean {
    return !this.#closed && this.#epoch === epoch && this.#sink.isOpen;
  }

  /** A live event revealed a gap: fill it from history, or without one deliver as it comes. */
  #fillGap(): void {
    if (!this.#kind.history) {
      const held = this.#held ?? [];
      this.#goLive();
      for (const { frame, seq } of held) this.#write(frame, seq);
      return;
    }
    void this.#catchUp(this.#epoch, null);
  }

  /**
   * Brings the stream up to date while its live events are held: writes `first` (and the pages
   * after it), then the held events in `seq` order. A held event past `position + 1` means
   * events were lost between the relay and this gateway (a broker that died after accepting
   * them): those are read from history too.
   */
  async #catchUp(epoch: number, first: OrderHistoryPage | 'read' | null): Promise<void> {
    const history = this.#kind.history!;
    try {
      let page = first === 'read' ? await history.read(this.userId, this.#position ?? 0) : first;
      let fruitless = 0;
      for (;;) {
        if (!this.#isCurrent(epoch)) return;
        if (page) {
          if (!this.#writeHistory(page)) return this.#giveUp('history no longer reaches the gap');
          if (page.truncated) {
            // A page at a time, each after the socket drained: a long replay never floods it.
            await this.#sink.whenDrained();
            if (!this.#isCurrent(epoch)) return;
            page = await history.read(this.userId, this.#position ?? 0);
            continue;
          }
        }
        const heldWritten = this.#writeHeld();
        if (heldWritten && (this.#position ?? 0) >= this.#target) {
          if (!this.#recoverOwed) return this.#goLive();
          this.#recoverOwed = false;
          page = await history.read(this.userId, this.#position ?? 0);
          continue;
        }
        // A gap remains: the missing events were committed after the page's snapshot. A page
        // with nothing past the position says the history lacks them; one more read first, as
        // this one may have joined a read that began before they were committed.
        if (page && page.events.length === 0 && page.latestSeq <= (this.#position ?? 0)) {
          if ((fruitless += 1) > 1) {
            if (!heldWritten) return this.#giveUp('an order event is missing from the history');
            // Only the follower's target is missing: no order event is lost on this socket.
            if (!this.#recoverOwed) return this.#abandonTarget();
            // The broker came back meanwhile: one more read before going live without it.
            this.#recoverOwed = false;
            fruitless = 0;
          }
        } else {
          fruitless = 0;
        }
        page = await history.read(this.userId, this.#position ?? 0);
      }
    } catch (err) {
      if (!this.#isCurrent(epoch)) return;
      this.#kind.deps.dependencyWarning.warn(
        { err: (err as Error).message },
        'order history read failed during catch-up',
      );
      this.#giveUp('order history unavailable');
    }
  }

  /** Writes a history page past the position; false when it does not connect to it. */
  #writeHistory(page: OrderHistoryPage): boolean {
    const { metrics } = this.#kind.deps;
    for (const item of page.events) {
      const position = this.#position ?? 0;
      if (item.seq <= position) continue;
      if (item.seq !== position + 1) return false;
      const decoded = decodeHistoryEvent(item, this.userId);
      if (!decoded) {
        // Skipping it would be a silent loss: the client resyncs over REST instead.
        dropMalformed(this.#kind.deps, { userId: this.userId, seq: item.seq }, 'dropped malformed history event');
        return false;
      }
      const frame = encodeTextFrame(JSON.stringify({ type: decoded.kind, ...decoded.event }));
      if (!this.#write(frame, item.seq)) return true; // closed meanwhile; nothing more to do
      metrics.delivered(decoded.kind);
    }
    return true;
  }

  /**
   * Writes the held events that follow the position, oldest `seq` first; true when none is left.
   * Those past a gap stay held (the catch-up reads the history for the gap).
   */
  #writeHeld(): boolean {
    const held = (this.#held ?? []).sort((a, b) => (a.seq ?? 0) - (b.seq ?? 0));
    this.#held = [];
    this.#heldBytes = 0;
    for (let i = 0; i < held.length; i++) {
      const { frame, seq } = held[i]!;
      const position = this.#position;
      if (seq !== undefined && position !== null) {
        if (seq <= position) {
          this.#kind.deps.metrics.dropped('duplicate');
          continue;
        }
        if (seq > position + 1) {
          this.#held = held.slice(i);
          for (const event of this.#held) this.#heldBytes += event.frame.length;
          return false;
        }
      }
      if (!this.#write(frame, seq)) break;
    }
    return true;
  }

  #goLive(): void {
    this.#held = null;
    this.#heldBytes = 0;
    this.#notify();
  }

  /** Writes an order frame and advances the position. */
  #write(frame: Buffer, seq: number | undefined): boolean {
    if (!this.#sink.sendFrame(frame)) return false;
    if (seq !== undefined) this.#position = Math.max(this.#position ?? 0, seq);
    if (this.#follower !== null) this.#notify();
    return true;
  }

  /** Goes live without the follower's target, which the history does not hold, and says so. */
  #abandonTarget(): void {
    const follower = this.#follower;
    this.#follower = null;
    this.#target = 0;
    this.#goLive();
    follower?.orderUnreachable();
  }

  /** Tells the follower once what it waits for went out. */
  #notify(): void {
    const follower = this.#follower;
    if (follower === null || !this.reached(this.#target)) return;
    this.#follower = null;
    this.#target = 0;
    follower.orderProgress();
  }

  #giveUp(why: string): void {
    this.#kind.deps.logger.warn(
      { connection: this.#sink.id, userId: this.userId, why },
      'order stream cannot continue; closing so the client resubscribes',
    );
    this.#restart();
    this.#sink.close(CLOSE_CODES.historyUnavailable, 'order history unavailable; resubscribe', 'history_unavailable');
  }
}
