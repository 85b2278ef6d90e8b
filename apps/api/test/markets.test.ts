import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { EVENT_CHANNELS, MemoryBroker } from '@repo/broker';
import { decodeEvent } from '@repo/events';
import { dec, openDatabase, type Database } from '@repo/db';
import { waitFor } from '@repo/test-support';
import type { Api } from '../src/index.ts';
import { bearer, makeApi, register, setPrice } from './support.ts';

/**
 * Every configured market trades, with exact amounts at BTC's size of price: Pyth-style
 * prices with 8 decimals, sizes with 9, fees below a cent, and the portfolio listing each
 * position.
 */
describe('several markets', () => {
  let db: Database;
  let broker: MemoryBroker;
  let api: Api;
  const fills: string[] = [];
  const FEE_RATE = '0.0001';
  const PRICES = { SOL: '231.45', BTC: '80123.45678901', ETH: '3012.34567891' };

  before(async () => {
    db = await openDatabase({ dataDir: 'memory://' });
    broker = new MemoryBroker();
    await broker.subscribe(EVENT_CHANNELS.order_filled, (message) => fills.push(message));
    api = makeApi(db, broker, { symbols: ['SOL', 'BTC', 'ETH'], feeRate: FEE_RATE });
    for (const [symbol, price] of Object.entries(PRICES)) await setPrice(broker, symbol, price);
  });
  after(async () => {
    await api.close();
    await broker.close();
    await db.close();
  });

  const order = (token: string, symbol: string, side: 'buy' | 'sell', size: string) =>
    api.app.inject({ method: 'POST', url: '/orders', headers: bearer(token), payload: { symbol, side, size } });
  /** The documented rule: fee = cost × rate, rounded up (the house's favour, mode 3) at 18 decimals. */
  const feeOf = (price: string, size: string) => dec(price).times(size).times(FEE_RATE).round(18, 3);

  it('fills orders in every symbol exactly, down to a billionth of a BTC, and lists each position', async () => {
    const { userId, token } = await register(api);
    let usd = dec('10000');
    const trades: [string, 'buy' | 'sell', string][] = [
      ['BTC', 'buy', '0.000000001'],
      ['BTC', 'buy', '0.123456788'],
      ['ETH', 'buy', '0.01'],
      ['SOL', 'buy', '0.25'],
      ['BTC', 'sell', '0.123456789'],
      ['ETH', 'sell', '0.000000007'],
    ];
    for (const [symbol, side, size] of trades) {
      const price = PRICES[symbol as keyof typeof PRICES];
      const response = await order(token, symbol, side, size);
      assert.equal(response.statusCode, 201, `${side} ${size} ${symbol}: ${response.body}`);
      const body = response.json<{ symbol: string; executedPrice: string; executedSize: string; fee: string }>();
      const fee = feeOf(price, size);
      assert.deepEqual(
        [body.symbol, body.executedPrice, body.executedSize, body.fee],
        [symbol, price, size, fee.toFixed()],
      );
      const cost = dec(price).times(size);
      usd = side === 'buy' ? usd.minus(cost).minus(fee) : usd.plus(cost).minus(fee);
    }
    // The smallest buy: 0.00008012345678901 USD, charged a fee of 8.012345678901e-9 rounded at 18 decimals.
    assert.equal(feeOf(PRICES.BTC, '0.000000001').toFixed(), '0.000000008012345679');

    const portfolio = (await api.app.inject({ method: 'GET', url: '/portfolio', headers: bearer(token) })).json<{
      balances: { asset: string; available: string }[];
      positions: { asset: string; size: string; avgEntryPrice: string }[];
    }>();
    assert.deepEqual(portfolio.balances, [{ asset: 'USD', available: usd.toFixed(), locked: '0' }]);
    assert.deepEqual(portfolio.positions, [
      { asset: 'BTC', size: '0', avgEntryPrice: '0' },
      { asset: 'ETH', size: '0.009999993', avgEntryPrice: PRICES.ETH },
      { asset: 'SOL', size: '0.25', avgEntryPrice: PRICES.SOL },
    ]);

    // The events carry the same exact figures, valid against the event schema.
    await waitFor(() => fills.filter((f) => (JSON.parse(f) as { userId: number }).userId === userId).length === 6);
    for (const raw of fills.filter((f) => (JSON.parse(f) as { userId: number }).userId === userId)) {
      const decoded = decodeEvent('order_filled', raw);
      assert.ok(decoded.ok, raw);
      assert.equal(decoded.event.fee, feeOf(decoded.event.executedPrice, decoded.event.executedSize).toFixed());
    }
  });

  it('refuses what a BTC order cannot do: funds short by a fraction of a cent, a tenth decimal of size', async () => {
    const { token } = await register(api);
    // The largest size 10000 USD pays for at this price, then one billionth more.
    const fits = dec('10000')
      .div(dec(PRICES.BTC).times(dec('1').plus(FEE_RATE)))
      .round(9, 0);
    const tooMuch = await order(token, 'BTC', 'buy', fits.plus('0.000000001').toFixed());
    assert.equal(tooMuch.statusCode, 422);
    assert.equal(tooMuch.json<{ reason: string }>().reason, 'insufficient_funds');
    const filled = await order(token, 'BTC', 'buy', fits.toFixed());
    assert.equal(filled.statusCode, 201);
    const tenth = await order(token, 'BTC', 'sell', '0.0000000001');
    assert.equal(tenth.statusCode, 400);
    assert.match(tenth.json<{ error: { message: string } }>().error.message, /at most 9 decimals/);
  });
});
