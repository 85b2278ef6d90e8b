import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { EVENT_KINDS } from '@repo/events';
import type { OrderHistory, OrderHistoryPage } from '../src/streams/order-history.ts';

/** One implementation of the history, with the means to fill it the way its producer does. */
export interface HistoryUnderTest {
  history: OrderHistory;
  /** A new user with no order event. */
  newUser(): Promise<number>;
  /** Records the user's next order event (a fill or a rejection), as committing an order does. */
  record(userId: number, kind: 'order_filled' | 'order_rejected'): Promise<void>;
  /** Applies the retention: each user keeps only its last `keep` order events. */
  keepLast(keep: number): Promise<void>;
  close(): Promise<void>;
}

const ALL = Number.MAX_SAFE_INTEGER;
const seqs = (page: OrderHistoryPage) => page.events.map((e) => e.seq);
const bytesOf = (page: OrderHistoryPage) => page.events.map((e) => JSON.stringify(e.payload).length);

/**
 * The paging rules every `OrderHistory` follows, whatever stores the events (memory, the outbox
 * on PGlite or PostgreSQL): the gateway's replay, gap fill and `recovered` answer rely on them.
 */
export function orderHistoryContract(name: string, open: () => Promise<HistoryUnderTest>): void {
  describe(`OrderHistory contract: ${name}`, () => {
    let under: HistoryUnderTest;
    before(async () => {
      under = await open();
    });
    after(() => under.close());

    it('answers a user with no order event, and an unknown user, with an empty page at 0', async () => {
      const empty = { events: [], latestSeq: 0, oldestSeq: null, truncated: false };
      assert.deepEqual(await under.history.read(await under.newUser(), 0, 10, 1000), empty);
      assert.deepEqual(await under.history.read(987_654_321, 0, 10, 1000), empty);
    });

    it("returns the user's own events after afterSeq, in seq order, as recorded", async () => {
      const user = await under.newUser();
      const other = await under.newUser();
      for (const kind of ['order_filled', 'order_rejected', 'order_filled', 'order_filled'] as const) {
        await under.record(user, kind);
      }
      await under.record(other, 'order_filled');
      const page = await under.history.read(user, 1, 100, 1 << 20);
      assert.deepEqual(seqs(page), [2, 3, 4]);
      assert.deepEqual(
        page.events.map((e) => e.kind),
        ['order_rejected', 'order_filled', 'order_filled'],
      );
      assert.deepEqual([page.latestSeq, page.oldestSeq, page.truncated], [4, 1, false]);
      for (const event of page.events) {
        const parsed = EVENT_KINDS[event.kind].schema.safeParse(event.payload);
        assert.ok(parsed.success, `seq ${event.seq} is a valid ${event.kind}`);
        assert.deepEqual([parsed.data.userId, parsed.data.seq], [user, event.seq]);
      }
      assert.deepEqual(seqs(await under.history.read(other, 0, 100, 1 << 20)), [1]);
    });

    it('cuts a page at limit events and says whether more follow', async () => {
      const user = await under.newUser();
      for (let i = 0; i < 5; i++) await under.record(user, 'order_filled');
      const first = await under.history.read(user, 0, 2, 1 << 20);
      assert.deepEqual([seqs(first), first.truncated], [[1, 2], true]);
      const last = await under.history.read(user, 3, 2, 1 << 20);
      assert.deepEqual([seqs(last), last.truncated], [[4, 5], false], 'exactly limit left: not truncated');
      assert.equal((await under.history.read(user, 5, 2, 1 << 20)).truncated, false);
    });

    it('cuts a page past maxBytes of event JSON, but always returns at least one event', async () => {
      const user = await under.newUser();
      for (let i = 0; i < 4; i++) await under.record(user, 'order_filled');
      const sizes = bytesOf(await under.history.read(user, 0, 100, 1 << 20));
      const one = await under.history.read(user, 0, 100, 1);
      assert.deepEqual([seqs(one), one.truncated], [[1], true], 'one event however small the bound');
      const two = await under.history.read(user, 0, 100, sizes[0]! + sizes[1]!);
      assert.deepEqual([seqs(two), two.truncated], [[1, 2], true], 'a bound met exactly is not passed');
      const short = await under.history.read(user, 0, 100, sizes[0]! + sizes[1]! - 1);
      assert.deepEqual(seqs(short), [1]);
    });

    it('reads only the latest seq from a position at or past it, up to the largest safe integer', async () => {
      const user = await under.newUser();
      for (let i = 0; i < 3; i++) await under.record(user, 'order_rejected');
      for (const afterSeq of [3, 4, ALL]) {
        const page = await under.history.read(user, afterSeq, 10, 1000);
        assert.deepEqual([page.events.length, page.latestSeq, page.truncated], [0, 3, false], `after ${afterSeq}`);
      }
    });

    it('after the retention, holds the last events only, and still knows the latest seq', async () => {
      const user = await under.newUser();
      for (let i = 0; i < 6; i++) await under.record(user, i % 3 === 2 ? 'order_rejected' : 'order_filled');
      await under.keepLast(2);
      const page = await under.history.read(user, 0, 100, 1 << 20);
      assert.deepEqual([seqs(page), page.oldestSeq, page.latestSeq], [[5, 6], 5, 6]);
      const fromRetained = await under.history.read(user, 5, 100, 1 << 20);
      assert.deepEqual(seqs(fromRetained), [6]);
    });
  });
}
