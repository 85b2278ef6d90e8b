import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { symbol } from '@repo/events';
import { MAX_SUBSCRIBE_SYMBOLS, parseSymbolList, SYMBOL_PATTERN } from '../src/index.ts';

describe('the symbols of subscribe prices', () => {
  it('reads a list of symbols, dropping duplicates and keeping the first place of each', () => {
    assert.deepEqual(parseSymbolList(['BTC', 'SOL', 'BTC', 'ETH', 'SOL']), {
      ok: true,
      symbols: ['BTC', 'SOL', 'ETH'],
    });
  });

  it('refuses an empty list, a list that is not an array, and entries that are not symbols', () => {
    for (const value of [[], 'BTC', null, { 0: 'BTC' }, ['btc'], ['BTC', 7], ['B-TC'], [''], ['A'.repeat(17)]]) {
      const parsed = parseSymbolList(value);
      assert.equal(parsed.ok, false, JSON.stringify(value));
    }
    const empty = parseSymbolList([]);
    assert.match(empty.ok ? '' : empty.message, /at least one symbol/);
  });

  it('bounds the length of the list before duplicates are removed', () => {
    assert.equal(parseSymbolList(Array.from({ length: MAX_SUBSCRIBE_SYMBOLS }, () => 'BTC')).ok, true);
    const tooLong = parseSymbolList(Array.from({ length: MAX_SUBSCRIBE_SYMBOLS + 1 }, () => 'BTC'));
    assert.equal(tooLong.ok, false);
  });

  it('accepts exactly the symbols an event may carry', () => {
    const candidate = fc.oneof(
      fc.stringMatching(/^[A-Z0-9]{1,16}$/),
      fc.string({ maxLength: 20 }),
      fc.stringMatching(/^[A-Za-z0-9.\- ]{0,18}$/),
    );
    fc.assert(
      fc.property(candidate, (value) => {
        assert.equal(SYMBOL_PATTERN.test(value), symbol.safeParse(value).success, JSON.stringify(value));
        assert.equal(parseSymbolList([value]).ok, symbol.safeParse(value).success);
      }),
      { numRuns: 2000 },
    );
  });
});
