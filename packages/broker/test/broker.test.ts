import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createClient } from 'redis';
import { MemoryBroker, connectRedisBroker, RedisBroker } from '../src/index.ts';
import { brokerContract } from './broker.contract.ts';
import { RedisServer } from '@repo/test-support';

brokerContract('MemoryBroker', () => Promise.resolve(new MemoryBroker()));

describe('RedisBroker', () => {
  let redis: RedisServer;
  before(async () => {
    redis = await RedisServer.start();
  });
  after(async () => {
    await redis.stop();
  });

  brokerContract(
    'RedisBroker',
    async () => {
      const flush = createClient({ url: redis.url });
      await flush.connect();
      await flush.flushAll();
      await flush.quit();
      return connectRedisBroker(redis.url, { baseDelayMs: 20, maxDelayMs: 200 });
    },
    {
      async killServerOf() {
        await redis.kill();
        return () => redis.restart();
      },
    },
  );

  it('subscribes to each Redis channel once, however many handlers', async () => {
    const broker = await connectRedisBroker(redis.url);
    const probe = createClient({ url: redis.url });
    await probe.connect();
    try {
      for (let i = 0; i < 5; i++) await broker.subscribe('once', () => {});
      const counts = await probe.sendCommand<unknown[]>(['PUBSUB', 'NUMSUB', 'once']);
      assert.equal(Number(counts[1]), 1);
    } finally {
      await probe.quit();
      await broker.close();
    }
  });

  it('fails to connect with a clear error when Redis is unreachable', async () => {
    const own = await RedisServer.start();
    const url = own.url;
    await own.stop();
    await assert.rejects(connectRedisBroker(url), (err: Error) => {
      assert.match(err.message, /cannot connect to Redis at redis:\/\/127\.0\.0\.1/);
      return true;
    });
  });

  it('is a RedisBroker handed its own clients', async () => {
    const publisher = createClient({ url: redis.url });
    const subscriber = publisher.duplicate();
    await Promise.all([publisher.connect(), subscriber.connect()]);
    const broker = new RedisBroker({ publisher, subscriber });
    assert.equal(broker.isUp(), true);
    await broker.close();
    assert.equal(publisher.isOpen, false);
  });
});
