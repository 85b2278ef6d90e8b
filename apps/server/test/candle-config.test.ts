import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError, loadConfig } from '../src/config.ts';

describe('candle configuration', () => {
  it('keeps 1 s candles 6 hours, 1 m candles 30 days and 1 h candles forever, flushed every second, by default', () => {
    const config = loadConfig({});
    assert.deepEqual(config.candleRetentionMs, { '1s': 6 * 3_600_000, '1m': 30 * 86_400_000, '1h': null });
    assert.equal(config.candleFlushIntervalMs, 1000);
  });

  it('reads retentions in seconds, minutes, hours or days, or forever', () => {
    const config = loadConfig({
      CANDLE_RETENTION_1S: '7200s',
      CANDLE_RETENTION_1M: '90m',
      CANDLE_RETENTION_1H: '3650d',
      CANDLE_FLUSH_INTERVAL_MS: '250',
    });
    assert.deepEqual(config.candleRetentionMs, { '1s': 7_200_000, '1m': 5_400_000, '1h': 3650 * 86_400_000 });
    assert.equal(config.candleFlushIntervalMs, 250);
    assert.equal(loadConfig({ CANDLE_RETENTION_1S: 'forever' }).candleRetentionMs['1s'], null);
  });

  const bad: [string, string][] = [
    ['CANDLE_RETENTION_1S', '6'],
    ['CANDLE_RETENTION_1S', '6 h'],
    ['CANDLE_RETENTION_1S', '59m'],
    ['CANDLE_RETENTION_1S', '0h'],
    ['CANDLE_RETENTION_1M', '-1d'],
    ['CANDLE_RETENTION_1M', '1.5d'],
    ['CANDLE_RETENTION_1H', 'never'],
    ['CANDLE_RETENTION_1H', '36501d'],
    ['CANDLE_FLUSH_INTERVAL_MS', '99'],
    ['CANDLE_FLUSH_INTERVAL_MS', '60001'],
    ['CANDLE_FLUSH_INTERVAL_MS', '1e3'],
  ];
  for (const [name, value] of bad) {
    it(`rejects ${name}=${value} with a message naming it`, () => {
      assert.throws(
        () => loadConfig({ [name]: value }),
        (err: unknown) => err instanceof ConfigError && err.message.includes(name),
      );
    });
  }
});
