import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createSimulatedSource, type PriceSource } from '../src/index.ts';

const TWO_DECIMALS = /^(?:0|[1-9]\d*)\.\d{2}$/;

async function path(source: PriceSource, symbol: string, steps: number): Promise<string[]> {
  const out: string[] = [];
  for (let i = 0; i < steps; i++) {
    const [quote] = await source.read([symbol]);
    assert.ok(quote, `a quote for ${symbol}`);
    out.push(quote.price);
  }
  return out;
}

describe('simulated source', () => {
  it('starts at SOL 150.00 by default and then moves', async () => {
    const prices = await path(createSimulatedSource({ seed: 1 }), 'SOL', 50);
    assert.equal(prices[0], '150.00');
    assert.ok(new Set(prices).size > 10, 'the price moves');
  });

  it('is deterministic for a seed, and different seeds walk differently', async () => {
    const a = await path(createSimulatedSource({ seed: 42 }), 'SOL', 300);
    const b = await path(createSimulatedSource({ seed: 42 }), 'SOL', 300);
    const c = await path(createSimulatedSource({ seed: 43 }), 'SOL', 300);
    assert.deepEqual(a, b);
    assert.notDeepEqual(a, c);
    assert.equal(createSimulatedSource({ seed: 42 }).seed, 42);
  });

  it("a symbol's path does not depend on the other symbols read with it", async () => {
    const alone = await path(
      createSimulatedSource({ seed: 7, startPrices: { SOL: '150.00', BTC: '60000.00' } }),
      'SOL',
      100,
    );
    const together = createSimulatedSource({ seed: 7, startPrices: { SOL: '150.00', BTC: '60000.00' } });
    const sol: string[] = [];
    for (let i = 0; i < 100; i++) {
      const quotes = await together.read(['BTC', 'SOL']);
      assert.deepEqual(
        quotes.map((q) => q.symbol),
        ['BTC', 'SOL'],
      );
      sol.push(quotes[1]!.price);
    }
    assert.deepEqual(sol, alone);
  });

  it('always emits a canonical 2-decimal price, never below 0.01, even in a violent walk from cents', async () => {
    const source = createSimulatedSource({ seed: 9, startPrices: { X: '0.05' }, volatility: 0.3 });
    let floorHits = 0;
    for (const price of await path(source, 'X', 20_000)) {
      assert.match(price, TWO_DECIMALS);
      assert.ok(Number(price) >= 0.01, price);
      if (price === '0.01') floorHits++;
    }
    assert.ok(floorHits > 0, 'the walk reached the floor and survived it');
  });

  it('has the volatility it was given (std of log returns per step)', async () => {
    const volatility = 0.002;
    const prices = (await path(createSimulatedSource({ seed: 3, volatility }), 'SOL', 5001)).map(Number);
    const returns = prices.slice(1).map((p, i) => Math.log(p / prices[i]!));
    const mean = returns.reduce((s, r) => s + r, 0) / returns.length;
    const std = Math.sqrt(returns.reduce((s, r) => s + (r - mean) ** 2, 0) / (returns.length - 1));
    assert.ok(Math.abs(std - volatility) / volatility < 0.1, `std ${std}`);
  });

  it('the default volatility is realistic for SOL: a day of 1 s ticks moves a few percent, not 50', async () => {
    const prices = await path(createSimulatedSource({ seed: 5 }), 'SOL', 86_400);
    const last = Number(prices.at(-1));
    assert.ok(last > 100 && last < 225, `after a day: ${last}`);
  });

  it('leaves out symbols it has no start price for', async () => {
    assert.deepEqual(await createSimulatedSource({ seed: 1 }).read(['ETH']), []);
  });

  it('refuses bad options, naming them', () => {
    assert.throws(() => createSimulatedSource({ seed: -1 }), /seed/);
    assert.throws(() => createSimulatedSource({ seed: 1.5 }), /seed/);
    assert.throws(() => createSimulatedSource({ volatility: -0.1 }), /volatility/);
    assert.throws(() => createSimulatedSource({ startPrices: { SOL: '0' } }), /start price of SOL/);
    assert.throws(() => createSimulatedSource({ startPrices: { SOL: '1e3' } }), /start price of SOL/);
  });
});
