import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { EVENT_CHANNELS } from '../src/broker-contract.ts';
import { OrderChannel } from '../src/streams/order-channel.ts';
import { PriceChannel } from '../src/streams/price-channel.ts';
import { channelDeps, FakeOwner, FakeSink, orderFilled, payloadOf, replies, routeOf } from './stream-fakes.ts';

describe('channel routing', () => {
  it('serialises each event once and hands the same frame to every recipient, and to recipients only', async () => {
    const deps = channelDeps();
    const prices = new PriceChannel({ ...deps, symbols: [], readStored: () => Promise.resolve([]) });
    const orders = new OrderChannel({ ...deps, history: null });
    const priceSinks = [new FakeSink(), new FakeSink(), new FakeSink()];
    const userSeven = [new FakeSink(), new FakeSink()];
    const userEight = new FakeSink();
    for (const sink of priceSinks)
      await prices.subscribe(sink).open({ type: 'subscribe', channel: 'prices' }, replies().reply);
    for (const [sink, userId] of [...userSeven.map((s) => [s, 7] as const), [userEight, 8] as const]) {
      await orders
        .subscribe(sink, new FakeOwner(), userId)
        .open({ type: 'subscribe', channel: 'orders' }, replies().reply);
    }

    const publishPrice = routeOf(prices, EVENT_CHANNELS.price);
    const publishFill = routeOf(orders, EVENT_CHANNELS.order_filled);
    publishPrice(JSON.stringify({ symbol: 'SOL', price: '1', timestamp: '2025-01-01T00:00:00.000Z' }));
    publishFill(JSON.stringify(orderFilled(7, 1)));

    const priceFrame = priceSinks[0]!.frames[0]!;
    for (const sink of priceSinks) assert.ok(sink.frames.length === 1 && sink.frames[0] === priceFrame, 'same Buffer');
    const orderFrame = userSeven[0]!.frames[0]!;
    assert.equal(userSeven[1]!.frames[0], orderFrame, 'same Buffer instance');
    assert.equal(userEight.frames.length, 0);
    assert.deepEqual(payloadOf(priceFrame), {
      type: 'price',
      symbol: 'SOL',
      price: '1',
      timestamp: '2025-01-01T00:00:00.000Z',
    });
  });
});
