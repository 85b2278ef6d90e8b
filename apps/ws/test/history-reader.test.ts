import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { TimeoutError } from '@repo/retry';
import { waitFor } from '@repo/test-support';
import {
  defaultHistoryReadLimits,
  HistoryBusyError,
  HistoryReader,
  type HistoryReadLimits,
} from '../src/streams/history-reader.ts';
import type { OrderHistory, OrderHistoryPage } from '../src/streams/order-history.ts';
import { GatedHistory } from './memory-order-history.ts';
import { orderFilled } from './stream-fakes.ts';

/** A database that takes `delayMs` per query, and counts the queries it ran and runs. */
class SlowHistory implements OrderHistory {
  readonly #delayMs: number;
  queries = 0;
  running = 0;

  constructor(delayMs: number) {
    this.#delayMs = delayMs;
  }

  async read(): Promise<OrderHistoryPage> {
    this.queries += 1;
    this.running += 1;
    await new Promise((resolve) => setTimeout(resolve, this.#delayMs));
    this.running -= 1;
    return { events: [], latestSeq: 0, oldestSeq: null, truncated: false };
  }
}

const limits = (overrides: Partial<HistoryReadLimits>): HistoryReadLimits => ({
  ...defaultHistoryReadLimits(),
  ...overrides,
});

describe('history reader', () => {
  // The read timeouts never keep a process up: while a held read is all there is, something must.
  let alive: NodeJS.Timeout | undefined;
  beforeEach(() => {
    alive = setInterval(() => {}, 60_000);
  });
  afterEach(() => clearInterval(alive));

  it('in a storm, runs no query for a caller that already gave up', async () => {
    const history = new SlowHistory(50);
    const reader = new HistoryReader(history, limits({ concurrentReads: 2, timeoutMs: 200 }));
    const reads = Array.from({ length: 40 }, (_, i) => reader.read(i + 1, 0));
    const outcomes = await Promise.allSettled(reads);
    const answered = outcomes.filter((outcome) => outcome.status === 'fulfilled').length;
    for (const outcome of outcomes) {
      if (outcome.status === 'rejected') assert.ok(outcome.reason instanceof TimeoutError);
    }
    // Every caller has its answer: whatever the database still does now is for nobody.
    await waitFor(() => history.running === 0, { what: 'the queries still running to end' });
    assert.ok(answered > 0, 'the first in line are answered');
    assert.ok(
      history.queries <= answered + 2,
      `${history.queries} queries for ${answered} answered callers: at most the 2 running at the deadline are wasted`,
    );
  });

  it('a caller retrying after its timeout joins the query still running instead of starting one', async () => {
    const history = new GatedHistory();
    history.memory.record('order_filled', orderFilled(7, 1));
    const reader = new HistoryReader(history, limits({ timeoutMs: 100 }));
    history.hold();
    await assert.rejects(reader.read(7, 0), TimeoutError);
    const retry = reader.read(7, 0);
    history.release();
    assert.equal((await retry).latestSeq, 1);
    assert.equal(history.reads, 1);
  });

  it('keeps a queued query in line while a caller that joined it still waits', async () => {
    const history = new GatedHistory();
    const reader = new HistoryReader(history, limits({ concurrentReads: 1, timeoutMs: 1000 }));
    history.hold();
    // Takes the only slot until released; its caller gives up too, only the slot matters here.
    const running = reader.read(1, 0).catch(() => {});
    const first = reader.read(2, 0);
    await new Promise((resolve) => setTimeout(resolve, 500)); // half of the first caller's time
    const joined = reader.read(2, 0);
    await assert.rejects(first, TimeoutError);
    history.release();
    await running;
    await joined;
    assert.equal(history.reads, 2, "one query for user 2's two callers");
  });

  it('refuses a refusable read past maxWaitingReads waiting at once; a stream catching up still queues', async () => {
    const history = new GatedHistory();
    const reader = new HistoryReader(history, limits({ concurrentReads: 1, maxWaitingReads: 2 }));
    history.hold();
    const refusable = { refusable: true };
    const admitted = [1, 2, 3].map((userId) => reader.read(userId, 0, refusable));
    await assert.rejects(reader.read(4, 0, refusable), HistoryBusyError);
    const joined = reader.read(2, 0, refusable); // adds no query to the line: not refused
    const catchingUp = reader.read(5, 0);
    history.release();
    await Promise.all([...admitted, joined, catchingUp]);
    assert.equal(history.reads, 4);
    await reader.read(4, 0, refusable);
  });
});
