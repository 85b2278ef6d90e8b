import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Registry } from 'prom-client';
import { WebSocket } from 'ws';
import { MemoryBroker, createEventPublisher, createPriceStore, type EventPublisher } from '@repo/broker';
import { connect, type TradewireClient } from '@repo/client';
import type { PriceMessage, ServerMessage } from '@repo/protocol';
import { TestClient, waitFor } from '@repo/test-support';
import { createGateway, type Gateway } from '../src/index.ts';
import { startGateway, StubSessions, type GatewayFixture } from './gateway-fixture.ts';
import { metricValue } from './metric-value.ts';

const SYMBOLS = ['SOL', 'BTC', 'ETH'];
const AT = '2025-03-01T00:00:00.000Z';

/** A reply without its request id. */
const withoutId = (message: ServerMessage) => {
  const { id: _id, ...rest } = message as ServerMessage & { id?: unknown };
  return rest;
};

/** `SYMBOL price` of every price message after the `from`-th message. */
const pricesOf = (client: TestClient, from = 0) =>
  client.received.slice(from).flatMap((m) => (m.type === 'price' ? [`${m.symbol} ${m.price}`] : []));

describe('prices by symbol', () => {
  let fx: GatewayFixture;
  let publisher: EventPublisher;
  let round = 0;
  /** Publishes a tick of every configured symbol with price `n`, and waits until `client` has the last one. */
  const tickAll = async (client: TestClient) => {
    const price = String((round += 1));
    for (const symbol of SYMBOLS) await publisher.publishPriceUpdate(symbol, price);
    await client.barrier();
    return price;
  };

  before(async () => {
    fx = await startGateway({ symbols: SYMBOLS });
    publisher = createEventPublisher(fx.broker);
    const store = createPriceStore(fx.broker);
    for (const [i, symbol] of SYMBOLS.entries()) await store.setPrice(symbol, String(100 + i), AT);
  });
  after(() => fx.close());

  it('delivers only the symbols asked for, snapshot included; subscribed carries them, deduplicated', async () => {
    const client = await fx.connect();
    client.send({ type: 'subscribe', channel: 'prices', symbols: ['ETH', 'BTC', 'ETH'], id: 's' });
    assert.deepEqual(await client.next(), { type: 'subscribed', channel: 'prices', symbols: ['ETH', 'BTC'], id: 's' });
    await client.barrier();
    assert.deepEqual(pricesOf(client), ['BTC 101', 'ETH 102']);
    const price = await tickAll(client);
    assert.deepEqual(pricesOf(client).slice(2), [`BTC ${price}`, `ETH ${price}`]);
  });

  it('a later subscribe replaces the set: kept symbols go on unrepeated, added ones get their snapshot', async () => {
    const client = await fx.connect();
    await client.request({ type: 'subscribe', channel: 'prices', symbols: ['SOL', 'BTC'] });
    const first = await tickAll(client);
    const mark = client.received.length;
    assert.deepEqual(
      withoutId(await client.request({ type: 'subscribe', channel: 'prices', symbols: ['BTC', 'ETH'] })),
      {
        type: 'subscribed',
        channel: 'prices',
        symbols: ['BTC', 'ETH'],
      },
    );
    const second = await tickAll(client);
    assert.deepEqual(pricesOf(client, mark), [`ETH ${first}`, `BTC ${second}`, `ETH ${second}`]);
    // Back to every symbol: only SOL was missing.
    const mark2 = client.received.length;
    assert.deepEqual(withoutId(await client.request({ type: 'subscribe', channel: 'prices' })), {
      type: 'subscribed',
      channel: 'prices',
    });
    await client.barrier();
    assert.deepEqual(pricesOf(client, mark2), [`SOL ${second}`]);
  });

  it('refuses unknown symbols, an empty list, and symbols on another channel; nothing changes', async () => {
    const before = await fx.metric('tradewire_ws_subscriptions', { channel: 'prices' });
    const client = await fx.connect();
    const refusal = await client.request({ type: 'subscribe', channel: 'prices', symbols: ['BTC', 'DOGE'] });
    assert.equal(refusal.type === 'error' && refusal.code, 'unknown_symbol');
    assert.match(refusal.type === 'error' ? refusal.message : '', /DOGE.*SOL, BTC, ETH/);
    const empty = await client.request({ type: 'subscribe', channel: 'prices', symbols: [] });
    assert.equal(empty.type === 'error' && empty.code, 'invalid_message');
    await tickAll(client);
    assert.deepEqual(pricesOf(client), [], 'a refused first subscribe leaves the socket unsubscribed');
    assert.equal(await fx.metric('tradewire_ws_subscriptions', { channel: 'prices' }), before);

    await client.request({ type: 'subscribe', channel: 'prices', symbols: ['SOL'] });
    const again = await client.request({ type: 'subscribe', channel: 'prices', symbols: ['ETH', 'XRP'] });
    assert.equal(again.type === 'error' && again.code, 'unknown_symbol');
    const mark = client.received.length;
    const price = await tickAll(client);
    assert.deepEqual(pricesOf(client, mark), [`SOL ${price}`], 'the live set stays as it was');

    const { client: user } = await fx.connectAs(77);
    const orders = await user.request({ type: 'subscribe', channel: 'orders', symbols: ['SOL'] });
    assert.equal(orders.type === 'error' && orders.code, 'invalid_message');
  });

  it('unsubscribe ends the prices subscription for every symbol', async () => {
    const client = await fx.connect();
    await client.request({ type: 'subscribe', channel: 'prices', symbols: ['SOL', 'ETH'] });
    assert.deepEqual(withoutId(await client.request({ type: 'unsubscribe', channel: 'prices', symbols: ['SOL'] })), {
      type: 'unsubscribed',
      channel: 'prices',
    });
    const mark = client.received.length;
    await tickAll(client);
    assert.deepEqual(pricesOf(client, mark), []);
  });
});

/** A portfolio of a few KB (never conflated, so it fills a socket that does not read). */
function fillerPortfolio(userId: number, version: number): string {
  const balances = Array.from({ length: 100 }, (_, i) => ({ asset: `F${i}`, available: `${version}.5`, locked: '0' }));
  return JSON.stringify({ userId, balances, positions: [], timestamp: new Date().toISOString(), version });
}

describe('prices by symbol on a slow socket', () => {
  it('after a narrower subscribe, no conflated tick of a dropped symbol follows the reply', async () => {
    const fx = await startGateway({
      symbols: SYMBOLS,
      limits: { softBufferedBytes: 32 * 1024, hardBufferedBytes: 64 * 1024 * 1024 },
    });
    const publisher = createEventPublisher(fx.broker);
    try {
      const { client } = await fx.connectAs(3);
      await client.request({ type: 'subscribe', channel: 'portfolio' });
      await client.request({ type: 'subscribe', channel: 'prices', symbols: ['SOL', 'BTC'] });
      client.ws.pause();
      // Some MB of portfolios (never conflated) the client does not read: more than the kernel
      // buffers take, so the socket stays over the soft limit and cannot drain until it reads.
      for (let version = 1; version <= 2000; version += 1) {
        await fx.broker.publish('trading:events:portfolio:update', fillerPortfolio(3, version));
      }
      for (const price of ['1', '2']) {
        await publisher.publishPriceUpdate('SOL', price);
        await publisher.publishPriceUpdate('BTC', price);
      }
      assert.equal(
        await fx.metric('tradewire_ws_events_dropped_total', { reason: 'slow_consumer' }),
        2,
        'the second SOL and BTC ticks replaced the held first ones',
      );
      // Written while the client reads nothing: the gateway handles it with both ticks held.
      client.send({ type: 'subscribe', channel: 'prices', symbols: ['SOL'], id: 'narrow' });
      await waitFor(
        async () => (await fx.metric('tradewire_ws_messages_delivered_total', { type: 'subscribed' })) >= 3,
        {
          timeoutMs: 10_000,
          intervalMs: 5,
          what: 'the reply to the narrower subscribe',
        },
      );
      const last = '3';
      await publisher.publishPriceUpdate('SOL', last);
      await publisher.publishPriceUpdate('BTC', last);
      client.ws.resume();
      await client.waitFor((m) => m.type === 'price' && m.symbol === 'SOL' && m.price === last, 10_000);
      await client.barrier(10_000);
      const reply = client.received.findIndex((m) => 'id' in m && m.id === 'narrow');
      assert.notEqual(reply, -1);
      // SOL is kept: its held tick (by then the newest, 3) follows. The held BTC one was forgotten.
      assert.deepEqual(pricesOf(client, reply + 1), ['SOL 3']);
    } finally {
      await fx.close();
    }
  });
});

describe('the SDK across a gateway restart', () => {
  const sessions = new StubSessions();
  let broker: MemoryBroker;
  let gateway: Gateway;
  let client: TradewireClient;
  let registry: Registry;

  const startOn = async (port: number) => {
    registry = new Registry();
    gateway = await createGateway({ broker, sessions, registry, symbols: SYMBOLS });
    return gateway.listen(port, '127.0.0.1');
  };

  before(() => {
    broker = new MemoryBroker();
  });
  after(async () => {
    client?.close();
    await gateway?.close();
    await broker.close();
  });

  it('resubscribes with the same symbols; the new gateway writes those symbols only', async () => {
    const port = await startOn(0);
    const publisher = createEventPublisher(broker);
    const store = createPriceStore(broker);
    const received: PriceMessage[] = [];
    let arrived: ((m: PriceMessage) => void) | null = null;
    const next = (match: (m: PriceMessage) => boolean) =>
      new Promise<PriceMessage>((resolve, reject) => {
        const found = received.find(match);
        if (found) return resolve(found);
        const timer = setTimeout(() => reject(new Error(`no matching price; got ${JSON.stringify(received)}`)), 10_000);
        arrived = (m) => {
          if (!match(m)) return;
          clearTimeout(timer);
          resolve(m);
        };
      });
    client = connect(`ws://127.0.0.1:${port}`, {
      WebSocket,
      reconnect: { baseDelayMs: 10, maxDelayMs: 50 },
      logger: { warn: () => {} },
    });
    await client.subscribe(
      'prices',
      (message) => {
        received.push(message);
        arrived?.(message);
      },
      { symbols: ['BTC', 'ETH'] },
    );
    await publisher.publishPriceUpdate('BTC', '1');
    await next((m) => m.price === '1');

    const reconnected = new Promise<void>((resolve) => {
      const off = client.on('reconnected', () => {
        off();
        resolve();
      });
    });
    await gateway.close();
    for (const symbol of SYMBOLS) await store.setPrice(symbol, '2', new Date().toISOString());
    await startOn(port);
    await reconnected;
    // The snapshot of the new gateway: the two symbols asked for.
    await next((m) => m.symbol === 'ETH' && m.price === '2');
    await next((m) => m.symbol === 'BTC' && m.price === '2');

    const written = () => metricValue(registry, 'tradewire_ws_messages_delivered_total', { type: 'price' });
    const before = await written();
    for (const symbol of SYMBOLS) await publisher.publishPriceUpdate(symbol, '3');
    await next((m) => m.symbol === 'ETH' && m.price === '3');
    await client.ping();
    assert.equal((await written()) - before, 2, 'the server wrote BTC and ETH, not SOL');
    assert.deepEqual(
      received.map((m) => `${m.symbol} ${m.price}`),
      ['BTC 1', 'BTC 2', 'ETH 2', 'BTC 3', 'ETH 3'],
    );
  });
});
