import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { EventValidationError, type OrderFilledEvent } from '@repo/events';
import { redisKeys } from '@repo/redis';
import { createClient } from 'redis';
import {
  EVENT_CHANNELS,
  MemoryBroker,
  connectRedisBroker,
  createEventPublisher,
  createPriceStore,
  type Broker,
} from '../src/index.ts';
import { listen } from './listen.ts';
import { RedisServer } from '@repo/test-support';

const fill = {
  userId: 123,
  orderId: 456,
  side: 'buy' as const,
  baseAsset: 'SOL',
  quoteAsset: 'USD',
  executedPrice: '231.45',
  executedSize: '10',
  fee: '0.23145',
};

const portfolio = {
  userId: 123,
  balances: [{ asset: 'USD', available: '7685.5', locked: '0' }],
  positions: [{ asset: 'SOL', size: '10', avgEntryPrice: '231.45' }],
  version: 9,
  orderSeq: 17,
};

describe('EVENT_CHANNELS', () => {
  it('names the channels of the design exactly, and the keys beside them', () => {
    assert.deepEqual(EVENT_CHANNELS, {
      price: 'trading:events:price:update',
      order_filled: 'trading:events:order:filled',
      order_rejected: 'trading:events:order:rejected',
      portfolio: 'trading:events:portfolio:update',
      session_revoked: 'trading:events:session:revoked',
    });
    assert.equal(redisKeys.price('SOL'), 'trading:price:SOL');
    assert.equal(redisKeys.portfolio(123), 'trading:portfolio:123');
  });
});

function publisherSuite(name: string, makeBroker: () => Promise<Broker>) {
  describe(`publish*() on ${name}`, () => {
    let broker: Broker;
    before(async () => {
      broker = await makeBroker();
    });
    after(async () => {
      await broker.close();
    });

    it('publishes a fill on trading:events:order:filled with a timestamp filled in', async () => {
      const publisher = createEventPublisher(broker, { now: () => new Date('2026-01-02T03:04:05.000Z') });
      const fills = await listen(broker, EVENT_CHANNELS.order_filled);
      const returned = await publisher.publishOrderFilled(fill);
      const event = JSON.parse(await fills.next()) as OrderFilledEvent;
      assert.deepEqual(event, { ...fill, timestamp: '2026-01-02T03:04:05.000Z' });
      assert.deepEqual(returned, event);
      await fills.stop();
    });

    it('publishes a price as {symbol, price, timestamp} on trading:events:price:update', async () => {
      const publisher = createEventPublisher(broker);
      const prices = await listen(broker, EVENT_CHANNELS.price);
      await publisher.publishPriceUpdate('SOL', '231.45');
      const event = JSON.parse(await prices.next()) as Record<string, string>;
      assert.deepEqual(Object.keys(event).sort(), ['price', 'symbol', 'timestamp']);
      assert.equal(event.price, '231.45');
      assert.ok(!Number.isNaN(Date.parse(event.timestamp!)));
      await prices.stop();
    });

    it('refuses invalid input with a typed error and publishes nothing', async () => {
      const publisher = createEventPublisher(broker);
      const fills = await listen(broker, EVENT_CHANNELS.order_filled);
      const prices = await listen(broker, EVENT_CHANNELS.price);
      await assert.rejects(publisher.publishOrderFilled({ ...fill, userId: 0 }), EventValidationError);
      await assert.rejects(publisher.publishOrderFilled({ ...fill, fee: '-1' }), EventValidationError);
      await assert.rejects(publisher.publishPriceUpdate('SOL', '0'), { code: 'invalid_event' });
      // Delivery is in publish order: had a refused event gone out, it would come before these.
      await publisher.publishOrderFilled({ ...fill, orderId: 999 });
      await publisher.publishPriceUpdate('SOL', '1');
      assert.equal((JSON.parse(await fills.next()) as OrderFilledEvent).orderId, 999);
      assert.equal((JSON.parse(await prices.next()) as { price: string }).price, '1');
      assert.equal(fills.messages.length, 1);
      assert.equal(prices.messages.length, 1);
      await Promise.all([fills.stop(), prices.stop()]);
    });

    it('publishes a portfolio and keeps it as the user latest, at trading:portfolio:<userId>', async () => {
      const publisher = createEventPublisher(broker);
      const updates = await listen(broker, EVENT_CHANNELS.portfolio);
      const event = await publisher.publishPortfolioUpdate(portfolio);
      assert.deepEqual(JSON.parse(await updates.next()), event);
      assert.deepEqual(JSON.parse((await broker.getLatest(redisKeys.portfolio(123)))!), event);
      await updates.stop();
    });

    it('publishes a session revocation as {sessionId} on trading:events:session:revoked', async () => {
      const publisher = createEventPublisher(broker);
      const revocations = await listen(broker, EVENT_CHANNELS.session_revoked);
      await assert.rejects(publisher.publishSessionRevoked({ sessionId: '' }), EventValidationError);
      await publisher.publishSessionRevoked({ sessionId: 'session-1' });
      assert.deepEqual(JSON.parse(await revocations.next()), { sessionId: 'session-1' });
      assert.equal(revocations.messages.length, 1);
      await revocations.stop();
    });

    it('keeps the latest price per symbol in the price store', async () => {
      const prices = createPriceStore(broker);
      await prices.setPrice('SOL', '100.10');
      await prices.setPrice('SOL', '100.20');
      assert.equal((await prices.getPrice('SOL'))?.price, '100.20');
      assert.equal(await prices.getPrice('BTC'), null);
      assert.deepEqual(
        (await prices.getPrices(['BTC', 'SOL'])).map((p) => p.symbol),
        ['SOL'],
      );
      await assert.rejects(prices.setPrice('SOL', 'abc'), EventValidationError);
      assert.equal((await prices.getPrice('SOL'))?.price, '100.20');
    });

    it('reads a stored price that does not decode as unknown', async () => {
      await broker.setLatest(redisKeys.price('ETH'), '{"symbol":"ETH","price":"-1"}');
      assert.equal(await createPriceStore(broker).getPrice('ETH'), null);
    });
  });
}

publisherSuite('MemoryBroker', () => Promise.resolve(new MemoryBroker()));

describe('on Redis', () => {
  let redis: RedisServer;
  before(async () => {
    redis = await RedisServer.start();
  });
  after(async () => {
    await redis.stop();
  });
  publisherSuite('RedisBroker', async () => connectRedisBroker(redis.url));

  it('stores the latest price at trading:price:SOL as the event JSON', async () => {
    const broker = await connectRedisBroker(redis.url);
    const probe = createClient({ url: redis.url });
    await probe.connect();
    try {
      const event = await createPriceStore(broker).setPrice('SOL', '231.45');
      assert.deepEqual(JSON.parse((await probe.get('trading:price:SOL')) ?? '{}'), event);
    } finally {
      await probe.quit();
      await broker.close();
    }
  });
});
