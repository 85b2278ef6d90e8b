/**
 * The Size field: what a user types becomes the decimal sent, or a message. A comma locale's
 * decimal comma is accepted; a comma is never read as a thousands separator.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { checkSize } from '../src/lib/money.ts';

test('a lone comma is the decimal separator', () => {
  assert.deepEqual(checkSize('0,5'), { ok: true, size: '0.5' });
  assert.deepEqual(checkSize(' 12,25 '), { ok: true, size: '12.25' });
  assert.deepEqual(checkSize('1,000'), { ok: true, size: '1.000' }, 'one, never a thousand');
  assert.deepEqual(checkSize('0,123456789'), { ok: true, size: '0.123456789' });
  assert.deepEqual(checkSize('0,1234567891'), { ok: false, message: 'At most 9 decimals' });
  assert.deepEqual(checkSize('0,0'), { ok: false, message: 'Size must be more than 0' });
});

test('a dot is the decimal separator as before', () => {
  assert.deepEqual(checkSize('0.5'), { ok: true, size: '0.5' });
  assert.deepEqual(checkSize('2'), { ok: true, size: '2' });
  assert.deepEqual(checkSize(''), { ok: false, message: 'Enter a size' });
});

test('a comma beside a dot, or more than one comma, is refused rather than guessed', () => {
  for (const typed of ['1,000.5', '1.000,5', '1,000,000', '0,5,', ',', '0,', ',5', '0.5,']) {
    assert.equal(checkSize(typed).ok, false, typed);
  }
});
