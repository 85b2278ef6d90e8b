import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import { connectRedisBroker, EVENT_CHANNELS } from '@repo/broker';
import { decodeEvent, type PriceUpdateEvent } from '@repo/events';
import { RedisServer, TradewireProcess, waitFor } from '@repo/test-support';
import { SOL_USD_FEED_ID } from '../src/index.ts';
import { cryptoFeed, FakeHermes } from './fake-hermes.ts';

const BTC_FEED = '0xe62df6c8b4a85fe1a67db44dc12de5db330f7ac66b72dc658afedf0f4a415b43';
const ETH_FEED = '0xff61491a931112ddf1bd8147cd1b641375f79f5825126d665480874634fd0ace';
const KEY = 'launch-test-key';

/**
 * `npm start -- worker` with PRICE_SOURCE=pyth, as the README tells a user with a key to run it,
 * against the Hermes double on loopback and a real Redis.
 */
describe('npm start -- worker with PRICE_SOURCE=pyth', () => {
  let hermes: FakeHermes;
  let redis: RedisServer;
  before(async () => {
    hermes = await FakeHermes.start();
    redis = await RedisServer.start();
  });
  after(async () => {
    await hermes.close();
    await redis.stop();
  });
  beforeEach(() => {
    hermes.reset();
    hermes.requiredKey = KEY;
    hermes.metadata.push(
      cryptoFeed('Crypto.BTC/USD', BTC_FEED),
      cryptoFeed('Crypto.WBTC/USD', '0x' + 'cd'.repeat(32)),
      cryptoFeed('Crypto.ETH/USD', ETH_FEED),
    );
    const t = Math.floor(Date.now() / 1000);
    hermes.publish(
      { id: SOL_USD_FEED_ID, price: '15000000000', expo: -8, publishTime: t },
      { id: BTC_FEED, price: '8000000000000', expo: -8, publishTime: t },
      { id: ETH_FEED, price: '300000000000', expo: -8, publishTime: t },
    );
  });

  const env = (extra: Record<string, string>) => ({
    REDIS_URL: redis.url,
    // The worker role opens no database; split roles only insist that one is configured.
    DATABASE_URL: 'postgres://unused@127.0.0.1:1/unused',
    PRICE_SOURCE: 'pyth',
    PYTH_HERMES_URL: hermes.url,
    PYTH_API_KEY: KEY,
    ...extra,
  });

  it('streams SOL, BTC and ETH with nothing but a key: feed ids resolved at start, prices on Redis', async () => {
    const subscriber = await connectRedisBroker(redis.url);
    const seen = new Map<string, PriceUpdateEvent>();
    await subscriber.subscribe(EVENT_CHANNELS.price, (raw) => {
      const decoded = decodeEvent('price', raw);
      if (decoded.ok) seen.set(`${decoded.event.symbol}=${decoded.event.price}`, decoded.event);
    });
    const connecting = hermes.nextStream();
    const worker = new TradewireProcess(['worker'], env({}));
    try {
      await worker.ready;
      assert.deepEqual(
        hermes.requestsTo('/v2/price_feeds').map((r) => r.query.get('query')),
        ['BTC', 'ETH'],
        'SOL is built in; BTC and ETH are looked up',
      );
      const stream = await connecting;
      assert.equal(stream.request.authorization, `Bearer ${KEY}`);
      assert.equal(stream.request.query.getAll('ids[]').length, 3, 'one stream for the three symbols');
      const t = Math.floor(Date.now() / 1000) + 1;
      stream.send([
        { id: SOL_USD_FEED_ID, price: '15125000000', expo: -8, publishTime: t },
        { id: BTC_FEED, price: '8012345000000', expo: -8, publishTime: t },
        { id: ETH_FEED, price: '301000000000', expo: -8, publishTime: t },
      ]);
      await waitFor(() => seen.has('SOL=151.25') && seen.has('BTC=80123.45') && seen.has('ETH=3010'), {
        what: 'the streamed prices of SOL, BTC and ETH on Redis',
        timeoutMs: 10_000,
      });
      assert.equal(seen.get('BTC=80123.45')?.timestamp, new Date(t * 1000).toISOString());
    } finally {
      const exit = await worker.stop();
      await subscriber.close();
      assert.equal(exit.code, 0, worker.tail());
    }
  });

  it('a symbol Hermes has no Crypto.<SYMBOL>/USD feed for stops the start, naming it', async () => {
    const worker = new TradewireProcess(['worker'], env({ SYMBOLS: 'SOL,BTC,NOPE' }));
    const exit = await worker.exited;
    assert.equal(exit.code, 1);
    const stderr = worker.stderr.join('\n');
    assert.match(stderr, /no Pyth price feed for NOPE/);
    assert.match(stderr, /PYTH_FEED_IDS/);
    assert.equal(hermes.requestsTo('/v2/updates/price/stream').length, 0, 'nothing was streamed');
  });
});
