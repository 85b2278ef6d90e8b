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
  it('walks SOL, BTC and ETH by default, each from a plausible level, with exact two-decimal prices', async () => {
    const source = createSimulatedSource({ seed: 1 });
    const first = await source.read(['SOL', 'BTC', 'ETH']);
    assert.deepEqual(first, [
      { symbol: 'SOL', price: '200.00' },
      { symbol: 'BTC', price: '80000.00' },
      { symbol: 'ETH', price: '3000.00' },
    ]);
    for (const symbol of ['SOL', 'BTC', 'ETH']) {
      const prices = await path(source, symbol, 50);
      assert.ok(new Set(prices).size > 10, `${symbol} moves`);
      for (const price of prices) assert.match(price, TWO_DECIMALS);
    }
  });

  it('prices every symbol asked for: one without a start price walks from 100.00', async () => {
    const source = createSimulatedSource({ seed: 1 });
    const [doge] = await source.read(['DOGE']);
    assert.deepEqual(doge, { symbol: 'DOGE', price: '100.00' });
    assert.equal((await createSimulatedSource({ seed: 1, otherStartPrice: '0.25' }).read(['DOGE']))[0]?.price, '0.25');
  });

  it('stays at a plausible level in the long run: pulled back to its start price, spread σ/√(2θ)', async () => {
    // A faster clock than the default (σ × 20, half-life / 600), same kind of process.
    const volatility = 0.003;
    const halfLife = 1000;
    const source = createSimulatedSource({ seed: 21, volatility, meanReversionHalfLife: halfLife });
    const logs = (await path(source, 'BTC', 100_000)).map((p) => Math.log(Number(p) / 80_000));
    const mean = logs.reduce((a, b) => a + b, 0) / logs.length;
    const std = Math.sqrt(logs.reduce((a, b) => a + (b - mean) ** 2, 0) / (logs.length - 1));
    const theta = 1 - 2 ** (-1 / halfLife);
    const expected = volatility / Math.sqrt(2 * theta);
    assert.ok(Math.abs(std - expected) / expected < 0.25, `spread ${std}, expected ${expected}`);
    assert.ok(Math.abs(mean) < 0.05, `centred on the start price: mean log ratio ${mean}`);
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
    assert.ok(last > 133 && last < 300, `after a day: ${last}`);
  });

  it('refuses bad options, naming them', () => {
    assert.throws(() => createSimulatedSource({ seed: -1 }), /seed/);
    assert.throws(() => createSimulatedSource({ seed: 1.5 }), /seed/);
    assert.throws(() => createSimulatedSource({ volatility: -0.1 }), /volatility/);
    assert.throws(() => createSimulatedSource({ startPrices: { SOL: '0' } }), /start price of SOL/);
    assert.throws(() => createSimulatedSource({ startPrices: { SOL: '1e3' } }), /start price of SOL/);
    assert.throws(() => createSimulatedSource({ meanReversionHalfLife: 0 }), /meanReversionHalfLife/);
    assert.throws(() => createSimulatedSource({ otherStartPrice: 'cheap' }), /start price/);
  });
});
