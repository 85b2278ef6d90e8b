import assert from 'node:assert/strict';
import { it } from 'node:test';
import { createPriceStore, MemoryBroker, type PriceStore } from '@repo/broker';
import { silentLogger } from '@repo/log';
import { createPriceReader } from '../src/price-reader.ts';

const T1 = '2030-01-01T00:00:01.000Z';
const T2 = '2030-01-01T00:00:02.000Z';

it('falls back to the newest price read, not one a slower read brought later, nor one now unknown', async () => {
  const broker = new MemoryBroker();
  const store = createPriceStore(broker);
  await store.setPrice('SOL', '100', T1);
  // The store as the reader sees it: a read may be held after it was answered, or fail.
  const holds: (Promise<void> | undefined)[] = [];
  let down = false;
  let empty = false;
  const seen: PriceStore = {
    ...store,
    async getPrices(symbols) {
      const hold = holds.shift();
      const answer = empty ? [] : await store.getPrices(symbols);
      await hold;
      if (down) throw new Error('redis down');
      return answer;
    },
  };
  const reader = createPriceReader(seen, { logger: silentLogger, timeoutMs: 5000 });

  let release!: () => void;
  holds.push(new Promise<void>((resolve) => (release = resolve)));
  const slow = reader.getPrice('SOL'); // answered 100, held back
  await store.setPrice('SOL', '101', T2);
  assert.equal((await reader.getPrice('SOL'))?.price, '101');
  release();
  assert.equal((await slow)?.price, '100', 'that read answers what it read');

  down = true;
  assert.equal((await reader.getPrice('SOL'))?.price, '101', 'the store is down: the newest price read');

  // The store answers again, without the price (a Redis that restarted empty), then fails.
  down = false;
  empty = true;
  assert.equal(await reader.getPrice('SOL'), null);
  empty = false;
  down = true;
  assert.equal(await reader.getPrice('SOL'), null, 'an unknown price stays unknown');
  await broker.close();
});
