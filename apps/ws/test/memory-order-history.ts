import type { OrderFilledEvent, OrderRejectedEvent } from '@repo/events';
import type { HistoryEvent, OrderHistory, OrderHistoryPage } from '../src/streams/order-history.ts';

/**
 * An order history in memory, for gateway tests: what the outbox transaction records, read with
 * the outbox's paging rules (the contract suite in order-history.contract.ts holds both to them).
 */
export class MemoryOrderHistory implements OrderHistory {
  readonly #byUser = new Map<number, { latestSeq: number; events: HistoryEvent[] }>();
  readonly #keep: number;

  /** `keep`: events kept per user, the oldest dropped as new ones are recorded (default 1000). */
  constructor(options: { keep?: number } = {}) {
    this.#keep = options.keep ?? 1000;
  }

  /** Records an event, as committing an order does; its `seq` is the user's next one unless given. */
  record(kind: HistoryEvent['kind'], payload: OrderFilledEvent | OrderRejectedEvent): void {
    const user = this.#byUser.get(payload.userId) ?? { latestSeq: 0, events: [] };
    this.#byUser.set(payload.userId, user);
    const seq = payload.seq ?? user.latestSeq + 1;
    user.latestSeq = seq;
    user.events.push({ kind, seq, payload: { ...payload, seq } });
    this.keepLast(this.#keep);
  }

  /** Keeps only each user's last `keep` events, as the outbox's retention does. */
  keepLast(keep: number): void {
    for (const user of this.#byUser.values()) user.events.splice(0, Math.max(0, user.events.length - keep));
  }

  read(userId: number, afterSeq: number, limit: number, maxBytes: number): Promise<OrderHistoryPage> {
    const user = this.#byUser.get(userId);
    if (!user) return Promise.resolve({ events: [], latestSeq: 0, oldestSeq: null, truncated: false });
    const after = user.events.filter((e) => e.seq > afterSeq);
    const events: HistoryEvent[] = [];
    let bytes = 0;
    for (const event of after) {
      if (events.length === limit) break;
      bytes += JSON.stringify(event.payload).length;
      if (events.length > 0 && bytes > maxBytes) break;
      events.push(event);
    }
    return Promise.resolve({
      events,
      latestSeq: user.latestSeq,
      oldestSeq: user.events[0]?.seq ?? null,
      truncated: events.length < after.length,
    });
  }
}
