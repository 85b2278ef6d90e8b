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

/**
 * A history whose reads the test can hold (`hold()` until `release()`, the page taken before the
 * wait, so events recorded meanwhile are not in it) or fail, and count.
 */
export class GatedHistory implements OrderHistory {
  readonly memory: MemoryOrderHistory;
  reads = 0;
  fail = false;
  #gate: Promise<void> | null = null;
  #open = () => {};
  #readers: { count: number; resolve: () => void }[] = [];

  constructor(memory = new MemoryOrderHistory()) {
    this.memory = memory;
  }

  hold(): void {
    this.#gate = new Promise((resolve) => (this.#open = resolve));
  }

  release(): void {
    this.#gate = null;
    this.#open();
  }

  /** Resolves once `count` reads have started. */
  untilReads(count: number): Promise<void> {
    if (this.reads >= count) return Promise.resolve();
    return new Promise((resolve) => this.#readers.push({ count, resolve }));
  }

  async read(userId: number, afterSeq: number, limit: number, maxBytes: number): Promise<OrderHistoryPage> {
    this.reads += 1;
    this.#readers = this.#readers.filter((reader) => {
      if (this.reads < reader.count) return true;
      reader.resolve();
      return false;
    });
    const page = await this.memory.read(userId, afterSeq, limit, maxBytes);
    if (this.#gate) await this.#gate;
    if (this.fail) throw new Error('database unavailable');
    return page;
  }
}
