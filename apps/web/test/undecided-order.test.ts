/**
 * The key of an order whose fate is unknown: kept for the same order placed again while the
 * fate is unknown, and freed once the order shows up in the user's orders, so that the same
 * order placed later is a new order rather than a replay of the first.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  describeOrder,
  keyForOrder,
  rememberUndecided,
  settleUndecided,
  type ListedOrder,
} from '../src/lib/undecided-order.ts';

/** sessionStorage's part that the module uses, in memory. */
function memoryStorage(): Storage {
  const items = new Map<string, string>();
  return {
    get length() {
      return items.size;
    },
    clear: () => items.clear(),
    getItem: (k) => items.get(k) ?? null,
    key: (i) => [...items.keys()][i] ?? null,
    removeItem: (k) => void items.delete(k),
    setItem: (k, v) => void items.set(k, String(v)),
  };
}

const order = describeOrder({ symbol: 'SOL', side: 'buy', size: '0.50' });
const listed = (orderId: number, seq: number | null, size = '0.5', side: 'buy' | 'sell' = 'buy'): ListedOrder => ({
  orderId,
  seq,
  symbol: 'SOL',
  side,
  size,
});
const fresh = () => 'fresh-key';

test('while the fate is unknown the same order gets the same key', () => {
  const storage = memoryStorage();
  rememberUndecided('t1', 'k1', order, 4, storage);
  assert.equal(keyForOrder('t1', order, fresh, storage), 'k1');
  assert.equal(keyForOrder('t2', order, fresh, storage), 'fresh-key', 'another session');
  const other = describeOrder({ symbol: 'SOL', side: 'sell', size: '0.50' });
  assert.equal(keyForOrder('t1', other, fresh, storage), 'fresh-key', 'another order');
});

test('the order showing up in the list frees its key', () => {
  const storage = memoryStorage();
  rememberUndecided('t1', 'k1', order, 4, storage);
  // Older orders of the same shape, orders of another shape and orders without a seq are not it.
  const notIt = [listed(7, 4), listed(6, 3), listed(9, 5, '0.25'), listed(10, 6, '0.5', 'sell'), listed(11, null)];
  assert.equal(settleUndecided('t1', notIt, storage), null);
  assert.equal(keyForOrder('t1', order, fresh, storage), 'k1', 'still kept');
  assert.equal(settleUndecided('t2', [listed(12, 7)], storage), null, 'another session’s list');

  // "0.5" in the list is the "0.50" that was sent.
  const it = listed(12, 7);
  assert.equal(settleUndecided('t1', [...notIt, it], storage), it);
  assert.equal(keyForOrder('t1', order, fresh, storage), 'fresh-key', 'the same order again is a new one');
});

test('without the latest seq known when it was sent, only an answer frees the key', () => {
  const storage = memoryStorage();
  rememberUndecided('t1', 'k1', order, null, storage);
  assert.equal(settleUndecided('t1', [listed(12, 7)], storage), null);
  assert.equal(keyForOrder('t1', order, fresh, storage), 'k1');
});

test('the same size typed another way is the same order and gets the same key', () => {
  const storage = memoryStorage();
  rememberUndecided('t1', 'k1', describeOrder({ symbol: 'SOL', side: 'buy', size: '0.50' }), 4, storage);
  for (const size of ['0.5', '0.500', '00.5']) {
    assert.equal(keyForOrder('t1', describeOrder({ symbol: 'SOL', side: 'buy', size }), fresh, storage), 'k1', size);
  }
  const smaller = describeOrder({ symbol: 'SOL', side: 'buy', size: '0.05' });
  assert.equal(keyForOrder('t1', smaller, fresh, storage), 'fresh-key');

  // An entry kept before sizes were described canonically holds the size as it was typed.
  rememberUndecided('t1', 'k2', JSON.stringify({ symbol: 'SOL', side: 'buy', size: '1.50' }), 4, storage);
  assert.equal(keyForOrder('t1', describeOrder({ symbol: 'SOL', side: 'buy', size: '1.5' }), fresh, storage), 'k2');
});
