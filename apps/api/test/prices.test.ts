import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createPriceStore, MemoryBroker } from '@repo/broker';
import { openDatabase, type Database } from '@repo/db';
import { redisKeys } from '@repo/redis';
import { waitFor } from '@repo/test-support';
import type { Api } from '../src/index.ts';
import { bearer, makeApi, register } from './support.ts';

/**
 * Orders never fill at a frozen price: past `maxPriceAgeMs` an order is rejected with
 * `price_stale` (stored and published like any rejection), and `GET /prices` says which
 * symbol's price is stale, each symbol on its own.
 */
describe('stale prices', () => {
  let db: Database;
  let broker: MemoryBroker;
  let api: Api;
  let now = Date.parse('2030-06-01T12:00:00.000Z');
  const rejected: string[] = [];

  before(async () => {
    db = await openDatabase({ dataDir: 'memory://' });
    broker = new MemoryBroker();
    await broker.subscribe(redisKeys.CHANNELS.orderRejected(), (message) => rejected.push(message));
    api = makeApi(db, broker, { symbols: ['SOL', 'BTC'], maxPriceAgeMs: 10_000, now: () => new Date(now) });
  });
  after(async () => {
    await api.close();
    await broker.close();
    await db.close();
  });

  const setPrice = (symbol: string, price: string, ageMs: number) =>
    createPriceStore(broker).setPrice(symbol, price, new Date(now - ageMs).toISOString());
  const prices = async () =>
    (await api.app.inject({ method: 'GET', url: '/prices' })).json<{ symbol: string; stale: boolean }[]>();
  const buy = (token: string, symbol: string) =>
    api.app.inject({
      method: 'POST',
      url: '/orders',
      headers: bearer(token),
      payload: { symbol, side: 'buy', size: '1' },
    });

  it('marks each price stale on its own and rejects orders at a stale price with 422 price_stale', async () => {
    await setPrice('SOL', '100', 1_000);
    await setPrice('BTC', '50000', 10_001);
    assert.deepEqual(
      (await prices()).map((p) => [p.symbol, p.stale]),
      [
        ['SOL', false],
        ['BTC', true],
      ],
    );

    const { userId, token } = await register(api);
    const stale = await buy(token, 'BTC');
    assert.equal(stale.statusCode, 422);
    const body = stale.json<{ orderId: number; status: string; reason: string; symbol: string }>();
    assert.deepEqual([body.status, body.reason, body.symbol], ['rejected', 'price_stale', 'BTC']);
    assert.equal((await buy(token, 'SOL')).statusCode, 201, 'a fresh symbol still trades');

    // Stored and published like any rejection; the balance paid only for the SOL fill.
    const list = (await api.app.inject({ method: 'GET', url: '/orders', headers: bearer(token) })).json<{
      orders: { orderId: number; reason: string | null }[];
    }>();
    assert.deepEqual(
      list.orders.map((o) => o.reason),
      [null, 'price_stale'],
    );
    const event = await waitFor(() =>
      rejected
        .map((m) => JSON.parse(m) as { userId: number; orderId: number; reason: string })
        .find((e) => e.userId === userId),
    );
    assert.deepEqual([event.orderId, event.reason], [body.orderId, 'price_stale']);
    const portfolio = (await api.app.inject({ method: 'GET', url: '/portfolio', headers: bearer(token) })).json<{
      balances: { available: string }[];
    }>();
    assert.equal(portfolio.balances[0]!.available, '9899.99');

    // Time passes with no tick: SOL goes stale too; a new tick makes it fresh again.
    now += 10_000;
    assert.deepEqual(
      (await prices()).map((p) => p.stale),
      [true, true],
    );
    assert.equal((await buy(token, 'SOL')).json<{ reason: string }>().reason, 'price_stale');
    await setPrice('SOL', '101', 0);
    assert.deepEqual(
      (await prices()).map((p) => [p.symbol, p.stale]),
      [
        ['SOL', false],
        ['BTC', true],
      ],
    );
    assert.equal((await buy(token, 'SOL')).statusCode, 201);
  });

  it('counts a price timestamped further ahead than MAX_PRICE_AGE_MS as stale, a little ahead as fresh', async () => {
    // A bad publish time an hour ahead must not keep a price "fresh" for an hour.
    await setPrice('SOL', '102', -3_600_000);
    await setPrice('BTC', '501', -1_000);
    assert.deepEqual(
      (await prices()).map((p) => [p.symbol, p.stale]),
      [
        ['SOL', true],
        ['BTC', false],
      ],
    );
    const { token } = await register(api);
    assert.equal((await buy(token, 'SOL')).json<{ reason: string }>().reason, 'price_stale');
    assert.equal((await buy(token, 'BTC')).statusCode, 201);
  });
});
