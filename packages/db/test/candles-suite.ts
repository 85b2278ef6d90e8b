import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { UPSERT_CHUNK, type CandleRow, type Database } from '../src/index.ts';

const row = (
  symbol: string,
  interval: CandleRow['interval'],
  t: number,
  [o, h, l, c]: [string, string, string, string],
): CandleRow => ({ symbol, interval, t, o, h, l, c });

/** The candle store behaves the same on both engines: one suite, run against each. */
export function candlesSuite(
  name: string,
  open: () => Promise<Database>,
  cleanup: () => Promise<void> = async () => {},
) {
  describe(`candles on ${name}`, () => {
    let db: Database;
    before(async () => {
      db = await open();
    });
    after(async () => {
      await db?.close();
      await cleanup();
    });

    it('merges a candle written again: the first open stays, high and low widen, the close is the last', async () => {
      await db.candles.upsert([row('SOL', '1m', 60_000, ['200.10', '201', '199.5', '200.5'])]);
      await db.candles.upsert([row('SOL', '1m', 60_000, ['200.40', '200.9', '198.25', '199.75'])]);
      // A writer taking over mid-candle knows only part of it: its extremes must not shrink the stored ones.
      await db.candles.upsert([row('SOL', '1m', 60_000, ['199.9', '199.9', '199.9', '199.9'])]);
      assert.deepEqual(await db.candles.list('SOL', '1m', { limit: 10 }), [
        { t: 60_000, o: '200.1', h: '201', l: '198.25', c: '199.9' },
      ]);
    });

    it('keeps BTC-sized prices and tiny ones exact', async () => {
      const big = ['80123.45678901', '123456789012345678901.123456789012345678', '0.000000000000000001', '80123.4'];
      await db.candles.upsert([row('BTC', '1s', 1000, big as [string, string, string, string])]);
      assert.deepEqual(await db.candles.list('BTC', '1s', { limit: 1 }), [
        { t: 1000, o: big[0], h: big[1], l: big[2], c: big[3] },
      ]);
    });

    it('lists the newest candles of one symbol and interval, oldest first, before a time when asked', async () => {
      const minute = 60_000;
      const rows = Array.from({ length: 20 }, (_, i) =>
        row('ETH', '1m', i * minute, ['3000', '3001', '2999', '3000.5']),
      );
      await db.candles.upsert([
        ...rows,
        row('ETH', '1s', 5 * minute, ['1', '1', '1', '1']),
        row('SOL', '1m', 5 * minute, ['2', '2', '2', '2']),
      ]);
      const times = async (options: { limit: number; before?: number | null }) =>
        (await db.candles.list('ETH', '1m', options)).map((c) => c.t / minute);
      assert.deepEqual(await times({ limit: 3 }), [17, 18, 19]);
      assert.deepEqual(await times({ limit: 3, before: 10 * minute }), [7, 8, 9]);
      assert.deepEqual(await times({ limit: 3, before: 10 * minute + 1 }), [8, 9, 10]);
      assert.deepEqual(await times({ limit: 100, before: 2 * minute }), [0, 1]);
      assert.deepEqual(await times({ limit: 5, before: 0 }), []);
      assert.deepEqual(await times({ limit: 500, before: Number.MAX_SAFE_INTEGER }), [...Array(20).keys()]);
      assert.deepEqual(await db.candles.list('NOPE', '1m', { limit: 5 }), []);
    });

    it('writes more rows than one statement takes, and the same key twice in one call', async () => {
      const many = Array.from({ length: UPSERT_CHUNK * 2 + 7 }, (_, i) =>
        row('MANY', '1s', i * 1000, ['10', '11', '9', '10']),
      );
      many.push(row('MANY', '1s', 0, ['10', '12', '8', '9']));
      await db.candles.upsert(many);
      const stored = await db.candles.list('MANY', '1s', { limit: 1000, before: 1000 * 1000 });
      assert.equal(stored.length, 1000);
      assert.deepEqual(stored[0], { t: 0, o: '10', h: '12', l: '8', c: '9' });
      assert.equal((await db.candles.list('MANY', '1s', { limit: 1000 })).at(-1)?.t, (UPSERT_CHUNK * 2 + 6) * 1000);
    });

    it('prunes one interval’s candles older than a time, oldest first, at most a batch at a time', async () => {
      await db.candles.upsert([
        ...[0, 1, 2, 3, 4].map((i) => row('PRN', '1s', i * 1000, ['5', '5', '5', '5'])),
        ...[0, 1, 2].map((i) => row('PRN2', '1s', i * 1000, ['5', '5', '5', '5'])),
        row('PRN', '1h', 0, ['5', '5', '5', '5']),
      ]);
      const before = (await db.candles.list('PRN', '1s', { limit: 10 })).length;
      assert.equal(before, 5);
      // Eight candles opened before 3 s (and others from earlier tests): a batch of 2 takes the two oldest.
      assert.equal(await db.candles.prune('1s', 3000, 2), 2);
      let left = 2;
      while (left === 2) left = await db.candles.prune('1s', 3000, 2);
      assert.deepEqual(
        (await db.candles.list('PRN', '1s', { limit: 10 })).map((c) => c.t),
        [3000, 4000],
      );
      assert.deepEqual(await db.candles.list('PRN2', '1s', { limit: 10 }), []);
      assert.deepEqual(
        (await db.candles.list('PRN', '1h', { limit: 10 })).map((c) => c.t),
        [0],
        'other intervals are untouched',
      );
    });

    it('refuses an inconsistent candle at the database level', async () => {
      await assert.rejects(db.candles.upsert([row('BAD', '1m', 0, ['10', '9', '8', '9'])]));
      await assert.rejects(db.candles.upsert([row('BAD', '1m', 0, ['0', '0', '0', '0'])]));
      assert.deepEqual(await db.candles.list('BAD', '1m', { limit: 5 }), []);
    });
  });
}
