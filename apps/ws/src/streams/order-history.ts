import { EVENT_KINDS, type OrderFilledEvent, type OrderRejectedEvent } from '@repo/events';

/** An order event as history hands it over; validated again by the gateway before it is sent. */
export interface HistoryEvent {
  kind: 'order_filled' | 'order_rejected';
  seq: number;
  /** The event as it was recorded (the same shape the relay publishes). */
  payload: unknown;
}

/** One bounded page of a user's order events. */
export interface OrderHistoryPage {
  /** Events with `seq` above the requested one, in `seq` order, at most `limit`. */
  events: HistoryEvent[];
  /** The user's latest order-event `seq` (0 before the first). */
  latestSeq: number;
  /** The oldest `seq` the history still holds for the user; null when it holds none. */
  oldestSeq: number | null;
  /** More events follow this page (a count or byte bound cut it short). */
  truncated: boolean;
}

/**
 * Where the gateway reads the order events a socket missed (issue 5): the database outbox in
 * the launcher (shared by every gateway, survives a Redis restart), `MemoryOrderHistory` in
 * tests. Implementations bound each read by `limit` events and `maxBytes` of JSON (at least one
 * event, so a reader always makes progress).
 */
export interface OrderHistory {
  read(userId: number, afterSeq: number, limit: number, maxBytes: number): Promise<OrderHistoryPage>;
}

/** Decodes a history event defensively: the payload must pass its schema and belong to the user. */
export function decodeHistoryEvent(
  event: HistoryEvent,
  userId: number,
): { kind: HistoryEvent['kind']; event: OrderFilledEvent | OrderRejectedEvent } | null {
  const parsed = EVENT_KINDS[event.kind]?.schema.safeParse(event.payload);
  if (!parsed?.success) return null;
  const decoded = parsed.data as OrderFilledEvent | OrderRejectedEvent;
  if (decoded.userId !== userId || decoded.seq !== event.seq) return null;
  return { kind: event.kind, event: decoded };
}

/**
 * In-memory history with the database's retention rule (the last `keep` events per user),
 * for gateway tests and in-process setups without a database.
 */
export class MemoryOrderHistory implements OrderHistory {
  readonly #byUser = new Map<number, { latestSeq: number; events: HistoryEvent[] }>();
  readonly #keep: number;

  constructor(options: { keep?: number } = {}) {
    this.#keep = options.keep ?? 1000;
  }

  /** Records an event (what the outbox transaction does); `seq` must be the user's next one. */
  record(kind: HistoryEvent['kind'], payload: OrderFilledEvent | OrderRejectedEvent): void {
    const user = this.#byUser.get(payload.userId) ?? { latestSeq: 0, events: [] };
    this.#byUser.set(payload.userId, user);
    const seq = payload.seq ?? user.latestSeq + 1;
    user.latestSeq = seq;
    user.events.push({ kind, seq, payload: { ...payload, seq } });
    if (user.events.length > this.#keep) user.events.splice(0, user.events.length - this.#keep);
  }

  async read(userId: number, afterSeq: number, limit: number, maxBytes: number): Promise<OrderHistoryPage> {
    const user = this.#byUser.get(userId);
    if (!user) return { events: [], latestSeq: 0, oldestSeq: null, truncated: false };
    const after = user.events.filter((e) => e.seq > afterSeq);
    const events: HistoryEvent[] = [];
    let bytes = 0;
    for (const event of after) {
      if (events.length === limit) break;
      bytes += JSON.stringify(event.payload).length;
      if (events.length > 0 && bytes > maxBytes) break;
      events.push(event);
    }
    return {
      events,
      latestSeq: user.latestSeq,
      oldestSeq: user.events[0]?.seq ?? null,
      truncated: events.length < after.length,
    };
  }
}
