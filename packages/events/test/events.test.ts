import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { MemoryBroker, connectRedisBroker, type Broker } from '@repo/broker';
import { redisKeys } from '@repo/redis';
import { createClient } from 'redis';
import {
  createEventPublisher,
  createPriceStore,
  decodeEvent,
  EventValidationError,
  type OrderFilledEvent,
} from '../src/index.ts';
import { RedisServer, nextValue } from '@repo/test-support';

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

describe('redisKeys', () => {
  it('names the channels of the design exactly', () => {
    assert.equal(redisKeys.CHANNELS.priceUpdate(), 'trading:events:price:update');
    assert.equal(redisKeys.CHANNELS.orderFilled(), 'trading:events:order:filled');
    assert.equal(redisKeys.CHANNELS.orderRejected(), 'trading:events:order:rejected');
    assert.equal(redisKeys.CHANNELS.portfolioUpdate(), 'trading:events:portfolio:update');
    assert.equal(redisKeys.price('SOL'), 'trading:price:SOL');
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
      const received = nextValue<string>((cb) => void broker.subscribe(redisKeys.CHANNELS.orderFilled(), cb));
      await new Promise((r) => setTimeout(r, 20));
      await publisher.publishOrderFilled(fill);
      const event = JSON.parse(await received) as OrderFilledEvent;
      assert.deepEqual(event, { ...fill, timestamp: '2026-01-02T03:04:05.000Z' });
    });

    it('publishes a price as {symbol, price, timestamp} on trading:events:price:update', async () => {
      const publisher = createEventPublisher(broker);
      const received = nextValue<string>((cb) => void broker.subscribe(redisKeys.CHANNELS.priceUpdate(), cb));
      await new Promise((r) => setTimeout(r, 20));
      await publisher.publishPriceUpdate('SOL', '231.45');
      const event = JSON.parse(await received);
      assert.deepEqual(Object.keys(event).sort(), ['price', 'symbol', 'timestamp']);
      assert.equal(event.price, '231.45');
      assert.ok(!Number.isNaN(Date.parse(event.timestamp)));
    });

    it('refuses invalid input with a typed error and publishes nothing', async () => {
      const publisher = createEventPublisher(broker);
      const seen: string[] = [];
      await broker.subscribe(redisKeys.CHANNELS.orderFilled(), (m) => seen.push(m));
      const bad = [
        { ...fill, userId: 0 },
        { ...fill, orderId: 1.5 },
        { ...fill, executedPrice: 231.45 },
        { ...fill, executedSize: '1e3' },
        { ...fill, fee: '-1' },
        { ...fill, side: 'hold' },
        { ...fill, timestamp: 'yesterday' },
      ];
      for (const input of bad) {
        await assert.rejects(publisher.publishOrderFilled(input as never), EventValidationError);
      }
      await assert.rejects(publisher.publishPriceUpdate('SOL', '0'), { code: 'invalid_event' });
      // A valid publish afterwards proves the channel was live while the bad ones were refused.
      const marker = nextValue<string>((cb) => void broker.subscribe(redisKeys.CHANNELS.orderFilled(), cb));
      await new Promise((r) => setTimeout(r, 20));
      await publisher.publishOrderFilled({ ...fill, orderId: 999 });
      assert.equal(JSON.parse(await marker).orderId, 999);
      assert.equal(seen.length, 1);
    });

    it('strips unknown fields so nothing extra reaches clients', async () => {
      const publisher = createEventPublisher(broker);
      const event = await publisher.publishOrderRejected({
        userId: 1,
        orderId: 2,
        side: 'sell',
        baseAsset: 'SOL',
        quoteAsset: 'USD',
        requestedSize: '5',
        reason: 'insufficient position',
        secret: 'x',
      } as never);
      assert.equal('secret' in event, false);
    });

    it('keeps the latest price and the latest portfolio in the store', async () => {
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
  });
}

publisherSuite('MemoryBroker', async () => new MemoryBroker());

describe('on Redis', () => {
  let redis: RedisServer;
  before(async () => {
    redis = await RedisServer.start();
  });
  after(async () => {
    await redis.stop();
  });
  publisherSuite('RedisBroker', async () => connectRedisBroker(redis.url));

  it('stores the latest price at trading:price:SOL', async () => {
    const broker = await connectRedisBroker(redis.url);
    const probe = createClient({ url: redis.url });
    await probe.connect();
    try {
      await createPriceStore(broker).setPrice('SOL', '231.45');
      const raw = await probe.get('trading:price:SOL');
      assert.equal(JSON.parse(raw ?? '{}').price, '231.45');
    } finally {
      await probe.quit();
      await broker.close();
    }
  });
});

describe('decodeEvent', () => {
  it('reports bad JSON and bad shapes as values, never throws', () => {
    assert.deepEqual(decodeEvent('price', '{nope').ok, false);
    const r = decodeEvent('order_filled', JSON.stringify({ ...fill, userId: -1, timestamp: new Date().toISOString() }));
    assert.equal(r.ok, false);
    if (!r.ok) assert.equal(r.reason, 'invalid_shape');
    const ok = decodeEvent('order_filled', JSON.stringify({ ...fill, timestamp: '2026-01-01T00:00:00Z' }));
    assert.equal(ok.ok, true);
  });
});
