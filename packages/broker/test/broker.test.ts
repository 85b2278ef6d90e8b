import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createClient } from 'redis';
import {
  BrokerCommandError,
  BrokerUnavailableError,
  MemoryBroker,
  connectRedisBroker,
  RedisBroker,
} from '../src/index.ts';
import { brokerContract } from './broker.contract.ts';
import { RedisServer, nextValue, waitFor } from '@repo/test-support';

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

  it('runs the versioned set by EVALSHA, and loads the script again when Redis has lost it', async () => {
    const broker = await connectRedisBroker(redis.url);
    const probe = createClient({ url: redis.url });
    await probe.connect();
    try {
      await probe.scriptFlush();
      assert.equal(await broker.setLatestIfNewer('sha', '{"version":2}', 2), true);
      const before = await probe.info('commandstats');
      assert.equal(await broker.setLatestIfNewer('sha', '{"version":1}', 1), false);
      const calls = (info: string, command: string) =>
        Number(new RegExp(`cmdstat_${command}:calls=(\\d+)`).exec(info)?.[1] ?? 0);
      const after = await probe.info('commandstats');
      assert.equal(calls(after, 'evalsha') - calls(before, 'evalsha'), 1);
      assert.equal(calls(after, 'eval'), calls(before, 'eval'), 'the script is cached: no EVAL');
      await probe.scriptFlush();
      assert.equal(await broker.setLatestIfNewer('sha', '{"version":3}', 3), true);
      assert.equal(await broker.getLatest('sha'), '{"version":3}');
    } finally {
      await probe.quit();
      await broker.close();
    }
  });

  it('tells a command Redis refuses from a broker it cannot reach', async () => {
    const own = await RedisServer.start();
    const broker = await connectRedisBroker(own.url, { baseDelayMs: 20, maxDelayMs: 200 });
    const probe = createClient({ url: own.url });
    await probe.connect();
    try {
      await probe.hSet('not-a-string', 'x', '1');
      await assert.rejects(broker.setLatestIfNewer('not-a-string', '{"version":1}', 1), (err: unknown) => {
        assert.ok(err instanceof BrokerCommandError, String(err));
        assert.equal(err.reply, 'WRONGTYPE');
        assert.equal(err.keyBound, true);
        assert.match(err.message, /WRONGTYPE/);
        return true;
      });
      await assert.rejects(broker.getLatest('not-a-string'), BrokerCommandError);
      assert.equal(broker.isUp(), true);

      await probe.configSet({ 'maxmemory-policy': 'noeviction', maxmemory: '1' });
      await assert.rejects(broker.setLatest('any', 'value'), (err: unknown) => {
        assert.ok(err instanceof BrokerCommandError, String(err));
        assert.equal(err.reply, 'OOM');
        assert.equal(err.keyBound, false);
        return true;
      });
      await probe.configSet({ maxmemory: '0' });

      await probe.quit();
      const down = new Promise<void>((resolve) => broker.onStatusChange((up) => !up && resolve()));
      await own.kill();
      await down;
      await assert.rejects(broker.publish('c', 'm'), BrokerUnavailableError);
    } finally {
      if (probe.isOpen) await probe.quit();
      await broker.close();
      await own.stop();
    }
  });

  it('closes in bounded time when Redis stops answering with a command pending on a ready connection', async () => {
    const own = await RedisServer.start();
    const broker = await connectRedisBroker(own.url, { baseDelayMs: 20, maxDelayMs: 200 });
    try {
      await broker.subscribe('c', () => {});
      own.pause();
      // A publish whose reply never comes: a close waits for pending replies.
      const pending = broker.publish('c', 'm').catch((err: unknown) => err);
      const started = Date.now();
      await broker.close();
      // The close gives up on the reply after 2 s rather than hang a shutdown.
      const tookMs = Date.now() - started;
      assert.ok(tookMs < 4000, `close took ${tookMs} ms`);
      // And the publish fails (when the connection's own socket timeout ends it), never hangs.
      assert.ok((await pending) instanceof Error, 'the pending publish fails');
    } finally {
      own.resume();
      await own.stop();
    }
  });

  it('reports down when an idle Redis stops answering, and up, still subscribed, when it answers again', async () => {
    const own = await RedisServer.start();
    const broker = await connectRedisBroker(own.url, { baseDelayMs: 20, maxDelayMs: 200 });
    const received: string[] = [];
    try {
      await broker.subscribe('live', (message) => received.push(message));
      // Long enough for several PINGs on the subscriber in RESP2 Pub/Sub mode: they must not upset it.
      await broker.publish('live', 'before');
      await new Promise((resolve) => setTimeout(resolve, 2500));
      await waitFor(() => received.includes('before'));
      const down = nextValue<boolean>((cb) => broker.onStatusChange(cb), { timeoutMs: 15_000, what: 'down' });
      own.pause();
      // Nothing is sent but the connections' own PINGs, which go unanswered.
      assert.equal(await down, false);
      const up = nextValue<boolean>((cb) => broker.onStatusChange(cb), { timeoutMs: 15_000, what: 'up' });
      own.resume();
      assert.equal(await up, true);
      await broker.publish('live', 'after');
      await waitFor(() => received.includes('after'), { what: 'a message after the pause' });
    } finally {
      own.resume();
      await broker.close();
      await own.stop();
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
