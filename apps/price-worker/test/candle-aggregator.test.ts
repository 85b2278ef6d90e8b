import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import Big from 'big.js';
import fc from 'fast-check';
import { CANDLE_INTERVAL_MS, type CandleInterval, type CandleRow } from '@repo/db';
import { CandleAggregator } from '../src/index.ts';
import { compareDecimal } from '../src/decimal-order.ts';

interface Tick {
  symbol: string;
  price: string;
  timeMs: number;
}

const key = (r: { symbol: string; interval: string; t: number }) => `${r.symbol}|${r.interval}|${r.t}`;

/** The reference: every candle folded from the whole tick list at once, with big.js comparisons. */
function referenceFold(ticks: readonly Tick[], intervals: readonly CandleInterval[]): Map<string, CandleRow> {
  const out = new Map<string, CandleRow>();
  for (const tick of ticks) {
    for (const interval of intervals) {
      const length = CANDLE_INTERVAL_MS[interval];
      const t = Math.floor(tick.timeMs / length) * length;
      const k = key({ symbol: tick.symbol, interval, t });
      const candle = out.get(k);
      if (!candle) {
        out.set(k, { symbol: tick.symbol, interval, t, o: tick.price, h: tick.price, l: tick.price, c: tick.price });
      } else {
        if (new Big(tick.price).gt(candle.h)) candle.h = tick.price;
        if (new Big(tick.price).lt(candle.l)) candle.l = tick.price;
        candle.c = tick.price;
      }
    }
  }
  return out;
}

/** What the database holds after upserting `rows` batch by batch, with the candle table's merge rule. */
function storeUpserts(store: Map<string, CandleRow>, rows: readonly CandleRow[]): void {
  for (const row of rows) {
    const stored = store.get(key(row));
    if (!stored) {
      store.set(key(row), { ...row });
      continue;
    }
    stored.h = new Big(row.h).gt(stored.h) ? row.h : stored.h;
    stored.l = new Big(row.l).lt(stored.l) ? row.l : stored.l;
    stored.c = row.c;
  }
}

const normalise = (rows: Iterable<CandleRow>) =>
  [...rows]
    .map((r) => ({
      ...r,
      o: new Big(r.o).toFixed(),
      h: new Big(r.h).toFixed(),
      l: new Big(r.l).toFixed(),
      c: new Big(r.c).toFixed(),
    }))
    .sort((a, b) => key(a).localeCompare(key(b)));

/** Prices of the event schema's form, trailing zeros included ("200.00"), from tiny to BTC-sized. */
const price = fc
  .tuple(fc.integer({ min: 0, max: 200_000 }), fc.integer({ min: 0, max: 99 }), fc.boolean())
  .filter(([whole, cents]) => whole > 0 || cents > 0)
  .map(([whole, cents, padded]) => {
    const fraction = String(cents).padStart(2, '0');
    return padded ? `${whole}.${fraction}` : new Big(`${whole}.${fraction}`).toFixed();
  });

/** Ticks of a few symbols in time order, with steps from 0 ms (same time) up to past an hour. */
const tickSequence = fc
  .array(
    fc.record({
      symbol: fc.constantFrom('SOL', 'BTC', 'ETH'),
      price,
      stepMs: fc.oneof(fc.integer({ min: 0, max: 1500 }), fc.integer({ min: 0, max: 4_000_000 })),
    }),
    { maxLength: 300 },
  )
  .chain((steps) =>
    fc.integer({ min: 1_700_000_000_000, max: 1_800_000_000_000 }).map((start) => {
      let timeMs = start;
      return steps.map(({ symbol, price: p, stepMs }) => {
        timeMs += stepMs;
        return { symbol, price: p, timeMs };
      });
    }),
  );

describe('candle aggregator', () => {
  it('matches a reference fold over random ticks, whatever the flushes and failed writes in between', () => {
    fc.assert(
      fc.property(
        tickSequence,
        fc.array(fc.constantFrom('none', 'flush', 'fail'), { minLength: 300, maxLength: 300 }),
        (ticks, actions) => {
          const aggregator = new CandleAggregator();
          const store = new Map<string, CandleRow>();
          ticks.forEach((tick, i) => {
            aggregator.add(tick.symbol, tick.price, tick.timeMs);
            if (actions[i] === 'flush') storeUpserts(store, aggregator.drain());
            if (actions[i] === 'fail') aggregator.requeue(aggregator.drain());
          });
          storeUpserts(store, aggregator.drain());
          assert.deepEqual(normalise(store.values()), normalise(referenceFold(ticks, aggregator.intervals).values()));
          assert.equal(aggregator.stats().outOfOrder, 0);
          assert.deepEqual(aggregator.drain(), [], 'nothing is handed out twice once written');
        },
      ),
      { numRuns: 300 },
    );
  });

  it('opens candles on the interval boundaries (UTC), the boundary itself in the new candle', () => {
    const aggregator = new CandleAggregator();
    const hour = Date.parse('2030-01-01T10:00:00.000Z');
    aggregator.add('SOL', '100', hour - 1); // 09:59:59.999
    aggregator.add('SOL', '101', hour); // 10:00:00.000
    aggregator.add('SOL', '102', hour + 999);
    aggregator.add('SOL', '103', hour + 1000);
    aggregator.add('SOL', '99.5', hour + 59_999);
    aggregator.add('SOL', '104', hour + 60_000);
    const rows = aggregator.drain();
    const candles = (interval: CandleInterval) =>
      rows.filter((r) => r.interval === interval).map(({ t, o, h, l, c }) => [t - hour, o, h, l, c]);
    assert.deepEqual(candles('1s'), [
      [-1000, '100', '100', '100', '100'],
      [0, '101', '102', '101', '102'],
      [1000, '103', '103', '103', '103'],
      [59_000, '99.5', '99.5', '99.5', '99.5'],
      [60_000, '104', '104', '104', '104'],
    ]);
    assert.deepEqual(candles('1m'), [
      [-60_000, '100', '100', '100', '100'],
      [0, '101', '103', '99.5', '99.5'],
      [60_000, '104', '104', '104', '104'],
    ]);
    assert.deepEqual(candles('1h'), [
      [-3_600_000, '100', '100', '100', '100'],
      [0, '101', '104', '99.5', '104'],
    ]);
  });

  it('leaves a tick older than its open candle out of that interval, and counts it', () => {
    const aggregator = new CandleAggregator({ intervals: ['1s', '1m'] });
    aggregator.add('ETH', '3000', 61_500);
    aggregator.add('ETH', '2990', 60_400); // an earlier second, same minute
    assert.deepEqual(
      aggregator.openCandles().map(({ interval, t, o, l, c }) => [interval, t, o, l, c]),
      [
        ['1s', 61_000, '3000', '3000', '3000'],
        ['1m', 60_000, '3000', '2990', '2990'],
      ],
    );
    assert.equal(aggregator.stats().outOfOrder, 1);
  });

  it('keeps at most maxPending closed candles while they cannot be written, dropping the oldest', () => {
    const aggregator = new CandleAggregator({ intervals: ['1s'], maxPending: 5 });
    for (let s = 0; s < 10; s++) aggregator.add('SOL', String(100 + s), s * 1000);
    aggregator.requeue(aggregator.drain());
    for (let s = 10; s < 13; s++) aggregator.add('SOL', String(100 + s), s * 1000);
    const rows = aggregator.drain();
    // Closed: seconds 7..11 (the newest five), then the open candle of second 12.
    assert.deepEqual(
      rows.map((r) => r.t / 1000),
      [7, 8, 9, 10, 11, 12],
    );
    assert.equal(aggregator.stats().droppedCandles, 7);
  });

  it('refuses an unknown interval and a bad maxPending', () => {
    assert.throws(() => new CandleAggregator({ intervals: ['5m' as CandleInterval] }), /unknown interval "5m"/);
    assert.throws(() => new CandleAggregator({ maxPending: 0 }), /maxPending/);
  });
});

describe('decimal order', () => {
  it('orders decimal strings as big.js does, trailing zeros and all', () => {
    const decimal = fc
      .tuple(
        fc.bigInt({ min: 0n, max: 10n ** 25n }),
        fc.string({ unit: fc.constantFrom('0', '1', '5', '9'), maxLength: 18 }),
      )
      .map(([whole, fraction]) => (fraction ? `${whole}.${fraction}` : String(whole)));
    fc.assert(
      fc.property(decimal, decimal, (a, b) => {
        assert.equal(compareDecimal(a, b), new Big(a).cmp(b));
      }),
      { numRuns: 2000 },
    );
  });
});
