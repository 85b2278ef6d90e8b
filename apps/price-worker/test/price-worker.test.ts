import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  BrokerUnavailableError,
  EVENT_CHANNELS,
  MemoryBroker,
  connectRedisBroker,
  createEventPublisher,
  createPriceStore,
  type Broker,
} from '@repo/broker';
import { decodeEvent, type PriceUpdateEvent } from '@repo/events';
import {
  createPriceWorker,
  createPythSource,
  createSimulatedSource,
  PriceSourceError,
  SOL_USD_FEED_ID,
  type PriceQuote,
  type PriceSource,
} from '../src/index.ts';
import { failedTickDelayMs } from '../src/price-worker.ts';
import { RedisServer, nextValue, waitFor } from '@repo/test-support';
import { capturingLogger, FakeHermes, hermesBody } from './fake-hermes.ts';

const PRICE_CHANNEL = EVENT_CHANNELS.price;

/** Every price event on the broker, decoded, in arrival order; `next()` awaits the next one. */
async function priceEvents(broker: Broker) {
  const events: PriceUpdateEvent[] = [];
  const waiters = new Set<(e: PriceUpdateEvent) => void>();
  const unsubscribe = await broker.subscribe(PRICE_CHANNEL, (raw) => {
    const decoded = decodeEvent('price', raw);
    assert.ok(decoded.ok, 'the worker publishes valid price events');
    events.push(decoded.event);
    for (const waiter of waiters) waiter(decoded.event);
  });
  const next = () =>
    nextValue<PriceUpdateEvent>(
      (cb) => {
        waiters.add(cb);
        return () => waiters.delete(cb);
      },
      { what: 'a price event' },
    );
  return { events, next, unsubscribe };
}

function wire(
  broker: Broker,
  source: PriceSource,
  extra: { intervalMs?: number; logger?: ReturnType<typeof capturingLogger>['logger'] } = {},
) {
  return createPriceWorker({
    source,
    prices: createPriceStore(broker),
    publisher: createEventPublisher(broker),
    symbols: ['SOL'],
    ...extra,
  });
}

/** A source whose reads the test answers by hand. */
function manualSource() {
  const pending: { resolve: (q: PriceQuote[]) => void; reject: (e: unknown) => void; signal?: AbortSignal }[] = [];
  let active = 0;
  let maxActive = 0;
  const source: PriceSource = {
    read: (_symbols, options) =>
      new Promise<PriceQuote[]>((resolve, reject) => {
        active++;
        maxActive = Math.max(maxActive, active);
        const done =
          <T>(f: (v: T) => void) =>
          (v: T) => {
            active--;
            f(v);
          };
        pending.push({
          resolve: done(resolve),
          reject: done(reject),
          ...(options?.signal ? { signal: options.signal } : {}),
        });
      }),
  };
  const nextRead = () => waitFor(() => pending.shift(), { what: 'a read of the source' });
  return {
    source,
    nextRead,
    get maxActive() {
      return maxActive;
    },
    get pendingCount() {
      return pending.length;
    },
  };
}

describe('price worker on the in-process broker', () => {
  it('stores the price, then publishes it on trading:events:price:update; the store agrees', async () => {
    assert.equal(PRICE_CHANNEL, 'trading:events:price:update');
    const broker = new MemoryBroker();
    const store = createPriceStore(broker);
    const seenInStoreOnDelivery: (PriceUpdateEvent | null)[] = [];
    await broker.subscribe(PRICE_CHANNEL, () => {
      void store.getPrice('SOL').then((p) => seenInStoreOnDelivery.push(p));
    });
    const { next } = await priceEvents(broker);
    const worker = wire(broker, createSimulatedSource({ seed: 11 }));

    const arriving = next();
    const result = await worker.tick();
    const event = await arriving;
    assert.equal(result.ok, true);
    assert.deepEqual(result.published, [event]);
    assert.equal(event.symbol, 'SOL');
    assert.equal(event.price, '200.00');
    assert.deepEqual(await store.getPrice('SOL'), event, 'snapshot and event carry the same price and timestamp');
    await waitFor(() => seenInStoreOnDelivery.length === 1);
    assert.deepEqual(
      seenInStoreOnDelivery[0],
      event,
      'a subscriber reacting to the event finds the store already updated',
    );
    await broker.close();
  });

  it('a failing source: no price published, the last one kept, and the next good tick recovers', async () => {
    const broker = new MemoryBroker();
    const { events, next } = await priceEvents(broker);
    let failing = false;
    const inner = createSimulatedSource({ seed: 2 });
    const source: PriceSource = {
      read: (symbols) =>
        failing ? Promise.reject(new PriceSourceError('source_unreachable', 'down')) : inner.read(symbols),
    };
    const { logger, lines } = capturingLogger();
    const worker = wire(broker, source, { logger });

    let arriving = next();
    await worker.tick();
    const first = await arriving;

    failing = true;
    for (let i = 0; i < 3; i++) {
      const result = await worker.tick();
      assert.equal(result.ok, false);
      assert.equal(result.error?.code, 'source_unreachable');
    }
    assert.deepEqual(await createPriceStore(broker).getPrice('SOL'), first);
    assert.equal(lines.filter((l) => l.level === 'warn').length, 3);

    failing = false;
    arriving = next();
    assert.equal((await worker.tick()).ok, true);
    const recovered = await arriving;
    assert.deepEqual(events, [first, recovered], 'nothing was published by the failed ticks');
    assert.ok(lines.some((l) => l.level === 'info' && l.data.failedTicks === 3));
    await broker.close();
  });

  it('a broker refusing writes fails the tick without publishing; the worker carries on', async () => {
    const broker = new MemoryBroker();
    const { events, next } = await priceEvents(broker);
    let down = false;
    const setLatest = broker.setLatest.bind(broker);
    broker.setLatest = (key, value) => (down ? Promise.reject(new BrokerUnavailableError()) : setLatest(key, value));
    const worker = wire(broker, createSimulatedSource({ seed: 4 }));

    down = true;
    const failed = await worker.tick();
    assert.equal(failed.ok, false);
    assert.equal(failed.error?.code, 'broker_unavailable');

    down = false;
    const arriving = next();
    assert.equal((await worker.tick()).ok, true);
    assert.deepEqual(events, [await arriving]);
    await broker.close();
  });

  it('a quote the event schema refuses is skipped, the others are published', async () => {
    const broker = new MemoryBroker();
    const { events, next } = await priceEvents(broker);
    const { logger, lines } = capturingLogger();
    const source: PriceSource = {
      read: () =>
        Promise.resolve([
          { symbol: 'SOL', price: '1e3' },
          { symbol: 'BTC', price: '60000.5' },
          { symbol: 'ETH', price: '3000' }, // not asked for
        ]),
    };
    const worker = createPriceWorker({
      source,
      prices: createPriceStore(broker),
      publisher: createEventPublisher(broker),
      symbols: ['SOL', 'BTC'],
      logger,
    });
    const arriving = next();
    const result = await worker.tick();
    assert.equal(result.ok, true);
    assert.equal((await arriving).symbol, 'BTC');
    assert.deepEqual(
      events.map((e) => e.symbol),
      ['BTC'],
    );
    assert.equal(await createPriceStore(broker).getPrice('SOL'), null);
    assert.ok(lines.some((l) => l.level === 'warn' && l.data.symbol === 'SOL'));
    await broker.close();
  });

  it('uses the source publish time as the event timestamp', async () => {
    const broker = new MemoryBroker();
    const publishTime = '2026-09-01T12:00:00.000Z';
    const worker = wire(broker, { read: () => Promise.resolve([{ symbol: 'SOL', price: '231.45', publishTime }]) });
    const { published } = await worker.tick();
    assert.equal(published[0]?.timestamp, publishTime);
    assert.equal((await createPriceStore(broker).getPrice('SOL'))?.timestamp, publishTime);
    await broker.close();
  });

  it('ticks never overlap, even when asked for while one runs', async () => {
    const broker = new MemoryBroker();
    const manual = manualSource();
    const worker = wire(broker, manual.source);
    const first = worker.tick();
    const second = worker.tick();
    (await manual.nextRead()).resolve([{ symbol: 'SOL', price: '100.00' }]);
    (await manual.nextRead()).resolve([{ symbol: 'SOL', price: '101.00' }]);
    assert.deepEqual(
      (await first).published.map((e) => e.price),
      ['100.00'],
    );
    assert.deepEqual(
      (await second).published.map((e) => e.price),
      ['101.00'],
    );
    assert.equal(manual.maxActive, 1);
    await broker.close();
  });

  it('start() ticks on its interval; stop() waits for the running tick and aborts its read', async () => {
    const broker = new MemoryBroker();
    const manual = manualSource();
    const { events } = await priceEvents(broker);
    const worker = wire(broker, manual.source, { intervalMs: 10 });
    worker.start();
    worker.start(); // a second start is a no-op, not a second loop
    for (const price of ['1.00', '2.00', '3.00']) (await manual.nextRead()).resolve([{ symbol: 'SOL', price }]);
    await waitFor(() => events.length === 3, { what: 'three published ticks' });
    assert.deepEqual(
      events.map((e) => e.price),
      ['1.00', '2.00', '3.00'],
    );

    const running = await manual.nextRead();
    let stopped = false;
    const stopping = worker.stop().then(() => (stopped = true));
    assert.equal(running.signal?.aborted, true, 'the in-flight read is told to give up');
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(stopped, false, 'stop() waits while the read is still running');
    running.resolve([{ symbol: 'SOL', price: '4.00' }]); // a source that ignores the abort
    await stopping;
    assert.equal(manual.maxActive, 1);
    assert.equal(manual.pendingCount, 0);
    await broker.close();
  });

  it('failed polls back off with full jitter up to the ceiling, never sooner than interval or Retry-After', () => {
    const at = (failures: number, random: number, retryAfterMs?: number) =>
      failedTickDelayMs(failures, { intervalMs: 1000, maxBackoffMs: 30_000, retryAfterMs, random: () => random });
    assert.equal(at(1, 0), 1000, 'a failing source is not asked more often than a healthy one');
    assert.equal(at(1, 0.5), 1000);
    assert.equal(at(1, 0.999), 1998);
    assert.equal(at(3, 0.999), 7992);
    assert.equal(at(50, 0.999), 29_970);
    assert.equal(at(50, 0), 1000);
    assert.equal(at(1, 0, 60_000), 60_000);
  });

  it('refuses bad options, naming them', () => {
    const broker = new MemoryBroker();
    const base = {
      source: createSimulatedSource(),
      prices: createPriceStore(broker),
      publisher: createEventPublisher(broker),
    };
    assert.throws(() => createPriceWorker({ ...base, symbols: [] }), /symbols/);
    assert.throws(() => createPriceWorker({ ...base, symbols: ['sol'] }), /symbol "sol"/);
    assert.throws(() => createPriceWorker({ ...base, symbols: ['SOL'], intervalMs: 0 }), /intervalMs/);
  });
});

describe('price worker with the Pyth source against a Hermes-shaped server', () => {
  let hermes: FakeHermes;
  before(async () => {
    hermes = await FakeHermes.start();
  });
  after(async () => {
    await hermes.close();
  });

  it('exact Pyth prices; 401, 429, 500, malformed, missing and stale answers publish nothing', async () => {
    const broker = new MemoryBroker();
    const { events, next } = await priceEvents(broker);
    let clock = 1_790_000_000_000;
    const source = createPythSource({ url: hermes.url, apiKey: 'key', now: () => clock });
    const worker = wire(broker, source);
    const store = createPriceStore(broker);
    const good = (price: string) => () => ({
      body: hermesBody([{ id: SOL_USD_FEED_ID, price, expo: -8, publishTime: clock / 1000 }]),
    });

    hermes.next = good('23145000000');
    let arriving = next();
    assert.equal((await worker.tick()).ok, true);
    const first = await arriving;
    assert.equal(first.price, '231.45');

    const failures: [string, () => object, boolean][] = [
      ['401', () => ({ status: 401 }), false],
      ['429', () => ({ status: 429, headers: { 'retry-after': '2' } }), false],
      ['500', () => ({ status: 500 }), false],
      ['malformed', () => ({ body: '<html>' }), false],
      ['missing feed', () => ({ body: hermesBody([]) }), true],
      [
        'stale',
        () => ({ body: hermesBody([{ id: SOL_USD_FEED_ID, price: '1', expo: 0, publishTime: clock / 1000 - 120 }]) }),
        true,
      ],
    ];
    for (const [name, reply, tickOk] of failures) {
      hermes.next = reply;
      clock += 5000; // past any Retry-After
      const result = await worker.tick();
      assert.equal(result.ok, tickOk, name);
      assert.deepEqual(result.published, [], name);
      assert.deepEqual(await store.getPrice('SOL'), first, `${name}: the last price is kept`);
    }

    clock += 5000;
    hermes.next = good('23200000001');
    arriving = next();
    assert.equal((await worker.tick()).ok, true);
    const recovered = await arriving;
    assert.equal(recovered.price, '232.00000001');
    assert.deepEqual(events, [first, recovered]);
    assert.deepEqual(await store.getPrice('SOL'), recovered);
    await broker.close();
  });
});

describe('price worker on Redis', () => {
  let redis: RedisServer;
  before(async () => {
    redis = await RedisServer.start();
  });
  after(async () => {
    await redis.stop();
  });

  it('the price reaches a Redis subscriber and trading:price:SOL; ticks fail while Redis is down', async () => {
    const broker = await connectRedisBroker(redis.url, { baseDelayMs: 20, maxDelayMs: 200 });
    // A second connection, as the gateway in another process would have.
    const gatewaySide = await connectRedisBroker(redis.url, { baseDelayMs: 20, maxDelayMs: 200 });
    try {
      const { next } = await priceEvents(gatewaySide);
      const worker = wire(broker, createSimulatedSource({ seed: 8 }));

      let arriving = next();
      assert.equal((await worker.tick()).ok, true);
      const event = await arriving;
      assert.equal(event.price, '200.00');
      assert.deepEqual(await createPriceStore(gatewaySide).getPrice('SOL'), event);

      const down = nextValue<boolean>((cb) => broker.onStatusChange(cb));
      await redis.kill();
      assert.equal(await down, false);
      const failed = await worker.tick();
      assert.equal(failed.ok, false);
      assert.equal(failed.error?.code, 'broker_unavailable');

      const up = nextValue<boolean>((cb) => gatewaySide.onStatusChange((isUp) => isUp && cb(isUp)), {
        timeoutMs: 10_000,
      });
      await redis.restart();
      await up;
      await waitFor(() => broker.isUp(), { timeoutMs: 10_000, what: 'the worker broker to reconnect' });
      arriving = next();
      assert.equal((await worker.tick()).ok, true);
      const after = await arriving;
      assert.deepEqual(await createPriceStore(gatewaySide).getPrice('SOL'), after);
    } finally {
      await broker.close();
      await gatewaySide.close();
    }
  });
});
