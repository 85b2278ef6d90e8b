import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CHART_INTERVALS, CandleSeries, type Tick } from '../src/lib/candle-series.ts';

const oneSecond = CHART_INTERVALS[0];
const tick = (timeMs: number, price: string): Tick => ({ price, timeMs });
const ohlc = (series: CandleSeries) => series.candles().map(({ t, o, h, l, c }) => [t, o, h, l, c]);

/** The chart's candles: history from the server, then live ticks, and both after a refetch. */
describe('candle series', () => {
  it('builds candles from live ticks and leaves out a tick older than the last candle', () => {
    const series = new CandleSeries('SOL', oneSecond);
    const changes: string[] = [];
    series.onChange((change) => changes.push(change.kind));
    for (const t of [tick(1000, '10'), tick(1500, '12.5'), tick(1900, '9.75'), tick(2100, '11'), tick(1950, '1')]) {
      series.addTick(t);
    }
    assert.deepEqual(ohlc(series), [
      [1000, '10', '12.5', '9.75', '9.75'],
      [2000, '11', '11', '11', '11'],
    ]);
    assert.deepEqual(changes, ['update', 'update', 'update', 'update']);
  });

  it('takes the history as the truth and replays the ticks the server had not written yet', () => {
    const series = new CandleSeries('BTC', oneSecond);
    const seen = [tick(4100, '80000.5'), tick(5200, '80010'), tick(5600, '79990.25'), tick(6100, '80001')];
    for (const t of seen) series.addTick(t);
    // The server wrote up to 5.2 s: its 5 s candle lacks the later ticks; its 4 s candle has an earlier open.
    series.setHistory(
      [
        { t: 3000, o: '79950', h: '79960', l: '79940', c: '79955' },
        { t: 4000, o: '79970', h: '80000.5', l: '79960', c: '80000.5' },
        { t: 5000, o: '80010', h: '80010', l: '80010', c: '80010' },
      ],
      seen,
    );
    assert.equal(series.loaded, true);
    assert.deepEqual(ohlc(series), [
      [3000, '79950', '79960', '79940', '79955'],
      [4000, '79970', '80000.5', '79960', '80000.5'],
      [5000, '80010', '80010', '79990.25', '79990.25'],
      [6000, '80001', '80001', '80001', '80001'],
    ]);
  });

  it('after a gap, a refetch fills what was missed and keeps the older candles it does not cover', () => {
    const series = new CandleSeries('ETH', oneSecond);
    series.setHistory(
      [
        { t: 1000, o: '3000', h: '3000', l: '3000', c: '3000' },
        { t: 2000, o: '3001', h: '3001', l: '3001', c: '3001' },
      ],
      [],
    );
    series.addTick(tick(9500, '3010'));
    series.setHistory(
      [
        { t: 2000, o: '3001', h: '3002', l: '3001', c: '3002' },
        { t: 5000, o: '3005', h: '3006', l: '3004', c: '3006' },
        { t: 9000, o: '3009', h: '3010', l: '3009', c: '3010' },
      ],
      [tick(9500, '3010')],
    );
    assert.deepEqual(
      series.candles().map((c) => c.t),
      [1000, 2000, 5000, 9000],
    );
    assert.deepEqual(ohlc(series).at(-1), [9000, '3009', '3010', '3009', '3010']);
  });
});
