import assert from 'node:assert/strict';
import * as net from 'node:net';
import { afterEach, test } from 'node:test';
import { WebSocket } from 'ws';
import { withTimeout } from '@repo/retry';
import {
  connect,
  ConnectionClosedError,
  ServerError,
  TimeoutError,
  type ClientOptions,
  type ConnectionState,
  type TradewireClient,
} from '../src/index.ts';
import type { OrderFilledMessage, OrderRejectedMessage, PortfolioMessage, PriceMessage } from '@repo/protocol';
import { FakeGateway, orderFilled, portfolio, price, type FakeConnection } from './fake-gateway.ts';

type OrderMessage = OrderFilledMessage | OrderRejectedMessage;

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

/** A fake gateway and a client on it with short backoffs; both closed after the test. */
async function setup(options: ClientOptions = {}) {
  const gateway = await FakeGateway.start();
  cleanups.push(() => gateway.stop());
  const warnings: unknown[][] = [];
  const client = connect(gateway.url, {
    WebSocket,
    reconnect: { baseDelayMs: 5, maxDelayMs: 20 },
    requestTimeoutMs: 2000,
    logger: { warn: (...args: unknown[]) => warnings.push(args) },
    ...options,
  });
  cleanups.push(() => client.close());
  return { gateway, client, warnings };
}

/** The next `event` from the client that passes `accept`, or a rejection after `timeoutMs`. */
function nextEvent<T>(
  client: TradewireClient,
  event: 'state' | 'error' | 'resync' | 'reconnected',
  accept: (value: T) => boolean = () => true,
  timeoutMs = 3000,
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => {
      off();
      reject(new Error(`timed out after ${timeoutMs} ms waiting for client event ${event}`));
    }, timeoutMs);
    const off = client.on(event as 'state', (value: unknown) => {
      if (!accept(value as T)) return;
      clearTimeout(timer);
      off();
      resolve(value as T);
    });
  });
}

/** Collects what a handler receives, with a way to await a count. */
function collector<M>(gateway: FakeGateway) {
  const messages: M[] = [];
  return {
    messages,
    handler: (message: M) => {
      messages.push(message);
      gateway.notify();
    },
    atLeast: (n: number) => gateway.until(() => messages.length >= n, `${n} delivered messages`),
  };
}

const types = (connection: FakeConnection) => connection.received.map((m) => m.type);

test('requests made while connecting are sent once open and resolve on the replies carrying their ids', async () => {
  const { gateway, client } = await setup();
  gateway.tokens.set('alice', 7);
  assert.equal(client.state, 'connecting');
  const authed = client.auth('alice');
  const roundTrip = client.ping();
  assert.deepEqual(await authed, { userId: 7 });
  assert.ok((await roundTrip) >= 0);
  assert.equal(client.state, 'open');
  const first = await gateway.connection(0);
  assert.deepEqual(
    first.received.map((m) => [m.type, m.id]),
    [
      ['auth', 1],
      ['ping', 2],
    ],
  );
});

test('replies are matched by id, not by arrival order', async () => {
  const { gateway, client } = await setup();
  gateway.tokens.set('alice', 7).set('bob', 8);
  gateway.intercept = (_c, m) => m.type === 'auth';
  const alice = client.auth('alice');
  const bob = client.auth('bob');
  const connection = await gateway.until(
    () => gateway.connections.find((c) => c.received.length === 2),
    'both auth requests',
  );
  const [aliceRequest, bobRequest] = connection.received;
  gateway.send(connection, { type: 'auth_ok', userId: 8, id: bobRequest!.id });
  gateway.send(connection, { type: 'auth_ok', userId: 7, id: aliceRequest!.id });
  assert.deepEqual(await alice, { userId: 7 });
  assert.deepEqual(await bob, { userId: 8 });
});

test("a refused request rejects with the server's code, and the connection stays usable", async () => {
  const { client } = await setup();
  await assert.rejects(client.auth('nobody'), (error: unknown) => {
    assert.ok(error instanceof ServerError);
    assert.equal(error.code, 'auth_failed');
    return true;
  });
  await assert.rejects(
    client.subscribe('orders', () => {}),
    { code: 'auth_required', channel: 'orders' },
  );
  await assert.rejects(
    client.subscribe('chat' as 'prices', () => {}),
    { code: 'unknown_channel' },
  );
  assert.ok((await client.ping()) >= 0);
  assert.equal(client.state, 'open');
});

test('subscribe delivers the channel messages; the last unsubscribe ends the server subscription', async () => {
  const { gateway, client } = await setup();
  const first = collector<PriceMessage>(gateway);
  const second = collector<PriceMessage>(gateway);
  const stopFirst = await client.subscribe('prices', first.handler);
  const stopSecond = await client.subscribe('prices', second.handler);
  gateway.publishPrice(price('BTC', '50000'));
  await first.atLeast(1);
  await second.atLeast(1);
  assert.equal(first.messages[0]!.symbol, 'BTC');

  await stopFirst();
  const connection = await gateway.connection(0);
  gateway.publishPrice(price('ETH', '3000'));
  await second.atLeast(2);
  assert.equal(first.messages.length, 1, 'an unsubscribed handler hears nothing more');
  assert.ok(!types(connection).includes('unsubscribe'), 'another handler still needs the channel');

  await stopSecond();
  assert.equal(connection.received.at(-1)!.type, 'unsubscribe');
  gateway.publishPrice(price('SOL', '150')); // the server no longer sends it
  await client.ping(); // a reply sent after the tick: any tick would have arrived first
  assert.equal(second.messages.length, 2);
  await stopSecond(); // idempotent
});

test('prices with symbols: the server is asked for them, the handler gets only them, snapshot included', async () => {
  const { gateway, client } = await setup();
  for (const symbol of ['SOL', 'BTC', 'ETH']) gateway.publishPrice(price(symbol, '1'));
  const btc = collector<PriceMessage>(gateway);
  await client.subscribe('prices', btc.handler, { symbols: ['BTC', 'BTC'] });
  const connection = await gateway.connection(0);
  assert.deepEqual(connection.received.at(-1), { type: 'subscribe', channel: 'prices', symbols: ['BTC'], id: 1 });
  for (const symbol of ['SOL', 'BTC', 'ETH']) gateway.publishPrice(price(symbol, '2'));
  await client.ping();
  assert.deepEqual(
    btc.messages.map((m) => `${m.symbol} ${m.price}`),
    ['BTC 1', 'BTC 2'],
  );
});

test('handlers with different symbols share the union; each gets its symbols, the latest of each once', async () => {
  const { gateway, client } = await setup();
  for (const symbol of ['SOL', 'BTC', 'ETH']) gateway.publishPrice(price(symbol, '1'));
  const btc = collector<PriceMessage>(gateway);
  const btcEth = collector<PriceMessage>(gateway);
  const every = collector<PriceMessage>(gateway);
  await client.subscribe('prices', btc.handler, { symbols: ['BTC'] });
  gateway.publishPrice(price('BTC', '2'));
  await btc.atLeast(2);

  // BTC is live on the socket: the server repeats it for nobody, the client hands its latest over.
  const stopBtcEth = await client.subscribe('prices', btcEth.handler, { symbols: ['ETH', 'BTC'] });
  const connection = await gateway.connection(0);
  assert.deepEqual(connection.received.at(-1)!.symbols, ['BTC', 'ETH']);
  const stopEvery = await client.subscribe('prices', every.handler);
  assert.equal(connection.received.at(-1)!.symbols, undefined, 'one handler wants every symbol');
  for (const symbol of ['SOL', 'BTC', 'ETH']) gateway.publishPrice(price(symbol, '3'));
  await client.ping();
  const seen = (c: { messages: PriceMessage[] }) => c.messages.map((m) => `${m.symbol} ${m.price}`).sort();
  assert.deepEqual(seen(btc), ['BTC 1', 'BTC 2', 'BTC 3']);
  assert.deepEqual(seen(btcEth), ['BTC 2', 'BTC 3', 'ETH 1', 'ETH 3']);
  assert.deepEqual(seen(every), ['BTC 2', 'BTC 3', 'ETH 1', 'ETH 3', 'SOL 1', 'SOL 3']);

  // Unsubscribing narrows the server's set to what the remaining handlers want.
  await stopEvery();
  assert.deepEqual(connection.received.at(-1), {
    type: 'subscribe',
    channel: 'prices',
    symbols: ['BTC', 'ETH'],
    id: connection.received.at(-1)!.id,
  });
  await stopBtcEth();
  assert.deepEqual(connection.received.at(-1)!.symbols, ['BTC']);
  assert.deepEqual([...connection.priceSymbols!], ['BTC']);
});

test('a bad symbol set is refused before it is sent; an unknown symbol is refused by the server', async () => {
  const { gateway, client } = await setup();
  const connection = await gateway.connection(0);
  await client.ping();
  for (const symbols of [[], ['btc'], ['B'.repeat(17)], Array.from({ length: 101 }, () => 'SOL')]) {
    await assert.rejects(
      client.subscribe('prices', () => {}, { symbols }),
      { code: 'invalid_message', channel: 'prices' },
    );
  }
  await assert.rejects(
    client.subscribe('orders', () => {}, { symbols: ['BTC'] }),
    { code: 'invalid_message' },
  );
  assert.deepEqual(types(connection), ['ping'], 'nothing was sent');

  const btc = collector<PriceMessage>(gateway);
  await client.subscribe('prices', btc.handler, { symbols: ['BTC'] });
  await assert.rejects(
    client.subscribe('prices', () => {}, { symbols: ['DOGE'] }),
    { code: 'unknown_symbol', channel: 'prices' },
  );
  gateway.publishPrice(price('BTC', '5'));
  await btc.atLeast(1);
  assert.deepEqual([...connection.priceSymbols!], ['BTC'], 'the refused request changed nothing');
});

test('a reconnect resubscribes prices with the union of the handlers, which keep their own symbols', async () => {
  const { gateway, client } = await setup();
  const sol = collector<PriceMessage>(gateway);
  const eth = collector<PriceMessage>(gateway);
  await client.subscribe('prices', sol.handler, { symbols: ['SOL'] });
  await client.subscribe('prices', eth.handler, { symbols: ['ETH'] });
  const reconnected = nextEvent(client, 'reconnected');
  gateway.dropAll();
  await reconnected;
  const second = await gateway.connection(1);
  assert.deepEqual(
    second.received.filter((m) => m.type === 'subscribe').map((m) => m.symbols),
    [['SOL', 'ETH']],
  );
  for (const symbol of ['SOL', 'BTC', 'ETH']) gateway.publishPrice(price(symbol, '9'));
  await client.ping();
  assert.deepEqual(
    sol.messages.map((m) => m.symbol),
    ['SOL'],
  );
  assert.deepEqual(
    eth.messages.map((m) => m.symbol),
    ['ETH'],
  );
});

test('state events run connecting → open → reconnecting → open → closed', async () => {
  const { gateway, client } = await setup();
  const states: ConnectionState[] = [client.state];
  client.on('state', (s) => states.push(s));
  await nextEvent(client, 'state', (s) => s === 'open');
  const reconnected = nextEvent(client, 'reconnected');
  gateway.dropAll();
  await reconnected;
  assert.equal(client.state, 'open');
  client.close();
  assert.deepEqual(states, ['connecting', 'open', 'reconnecting', 'open', 'closed']);
  await assert.rejects(client.ping(), ConnectionClosedError);
});

test('a reconnect re-authenticates, then resubscribes (orders with since); replayed events arrive once', async () => {
  const { gateway, client } = await setup();
  gateway.tokens.set('alice', 7);
  await client.auth('alice');
  const orders = collector<OrderMessage>(gateway);
  const prices = collector<PriceMessage>(gateway);
  await client.subscribe('orders', orders.handler);
  await client.subscribe('prices', prices.handler);
  gateway.publishOrder(orderFilled(7, 1));
  gateway.publishOrder(orderFilled(7, 2));
  await orders.atLeast(2);

  // Published while the client is away: only the history has them.
  gateway.record(orderFilled(7, 3));
  gateway.record(orderFilled(7, 4));
  const reconnected = nextEvent(client, 'reconnected');
  gateway.dropAll();
  await reconnected;

  const second = await gateway.connection(1);
  assert.deepEqual(second.received[0], { type: 'auth', token: 'alice', id: second.received[0]!.id });
  const subscribes = second.received.filter((m) => m.type === 'subscribe');
  assert.deepEqual(subscribes.map((m) => [m.channel, m.since]).sort(), [
    ['orders', 2],
    ['prices', undefined],
  ]);
  await orders.atLeast(4);
  gateway.publishOrder(orderFilled(7, 5));
  gateway.publishPrice(price('BTC', '1'));
  await orders.atLeast(5);
  await prices.atLeast(1);
  assert.deepEqual(
    orders.messages.map((m) => m.seq),
    [1, 2, 3, 4, 5],
  );
});

test('further orders handlers join the subscription without a request of their own, at once or later', async () => {
  const { gateway, client } = await setup();
  gateway.tokens.set('alice', 7);
  await client.auth('alice');
  const handlers = [
    collector<OrderMessage>(gateway),
    collector<OrderMessage>(gateway),
    collector<OrderMessage>(gateway),
  ];
  // Two at once: the second waits for the first's subscribe instead of sending its own.
  await Promise.all([
    client.subscribe('orders', handlers[0]!.handler),
    client.subscribe('orders', handlers[1]!.handler),
  ]);
  await client.subscribe('orders', handlers[2]!.handler);
  const connection = await gateway.connection(0);
  // A second subscribe would make the gateway restart the stream at its latest seq, passing
  // over an event committed but not yet published (shown on the real gateway in apps/ws).
  assert.equal(connection.received.filter((m) => m.type === 'subscribe').length, 1);
  gateway.publishOrder(orderFilled(7, 1));
  for (const handler of handlers) await handler.atLeast(1);
});

test('duplicates and stale portfolios are dropped; a new portfolio handler still gets its snapshot', async () => {
  const { gateway, client } = await setup();
  gateway.tokens.set('alice', 7);
  await client.auth('alice');
  const orders = collector<OrderMessage>(gateway);
  const first = collector<PortfolioMessage>(gateway);
  await client.subscribe('orders', orders.handler);
  await client.subscribe('portfolio', first.handler);
  const connection = await gateway.connection(0);

  for (const seq of [1, 2, 2, 1, 3]) gateway.send(connection, orderFilled(7, seq));
  for (const version of [1, 2, 2, 1, 3]) gateway.publishPortfolio(portfolio(7, version));
  await client.ping(); // everything above arrived before the pong
  assert.deepEqual(
    orders.messages.map((m) => m.seq),
    [1, 2, 3],
  );
  assert.deepEqual(
    first.messages.map((m) => m.version),
    [1, 2, 3],
  );

  // The snapshot (version 3) is a repeat for `first` but the only state `second` will get.
  const second = collector<PortfolioMessage>(gateway);
  await client.subscribe('portfolio', second.handler);
  await client.ping();
  assert.deepEqual(
    second.messages.map((m) => m.version),
    [3],
  );
  assert.deepEqual(
    first.messages.map((m) => m.version),
    [1, 2, 3],
  );
});

test('a server without seq or version: nothing is dropped and a reconnect subscribes without since', async () => {
  const { gateway, client } = await setup();
  gateway.sendsPositions = false;
  gateway.tokens.set('alice', 7);
  await client.auth('alice');
  const orders = collector<OrderMessage>(gateway);
  await client.subscribe('orders', orders.handler);
  const twice = orderFilled(7);
  gateway.publishOrder(twice);
  gateway.publishOrder(twice);
  await orders.atLeast(2);
  const reconnected = nextEvent(client, 'reconnected');
  gateway.dropAll();
  await reconnected;
  const second = await gateway.connection(1);
  const subscribe = second.received.find((m) => m.type === 'subscribe');
  assert.equal(subscribe?.channel, 'orders');
  assert.ok(subscribe);
  assert.equal('since' in subscribe, false);
});

test('recovered:false emits resync and moves the position to the server latest seq', async () => {
  const { gateway, client } = await setup();
  gateway.tokens.set('alice', 7);
  await client.auth('alice');
  const orders = collector<OrderMessage>(gateway);
  await client.subscribe('orders', orders.handler);
  gateway.publishOrder(orderFilled(7, 1));
  await orders.atLeast(1);

  // While the client is away, history moves on past what retention keeps (2..4 are gone).
  for (let seq = 2; seq <= 10; seq++) gateway.record(orderFilled(7, seq));
  gateway.retainedFrom.set(7, 5);
  const events: string[] = [];
  client.on('resync', (channel) => events.push(`resync:${channel}`));
  client.on('reconnected', () => events.push('reconnected'));
  const reconnected = nextEvent(client, 'reconnected');
  gateway.dropAll();
  await reconnected;
  assert.deepEqual(events, ['resync:orders', 'reconnected']);
  const second = await gateway.connection(1);
  assert.equal(second.received.find((m) => m.type === 'subscribe')?.since, 1);

  gateway.publishOrder(orderFilled(7, 11)); // live again, after the REST reload
  await orders.atLeast(2);
  assert.deepEqual(
    orders.messages.map((m) => m.seq),
    [1, 11],
  );

  const again = nextEvent(client, 'reconnected');
  gateway.dropAll();
  await again;
  const third = await gateway.connection(2);
  assert.equal(third.received.find((m) => m.type === 'subscribe')?.since, 11);
});

test('close() during the backoff stops reconnecting for good', async () => {
  const { gateway, client } = await setup({ reconnect: { baseDelayMs: 40, maxDelayMs: 40 } });
  await nextEvent(client, 'state', (s) => s === 'open');
  const reconnecting = nextEvent(client, 'state', (s) => s === 'reconnecting');
  gateway.dropAll();
  await reconnecting; // the backoff timer is set; it cannot have fired within this tick
  client.close();
  assert.equal(client.state, 'closed');
  // Asserting that something does NOT happen needs a bounded wait: twice the longest backoff.
  await new Promise((resolve) => setTimeout(resolve, 100));
  assert.equal(gateway.connections.length, 1);
  assert.equal(client.state, 'closed');
});

test('close() while the session is being restored wins over the late reply', async () => {
  const { gateway, client } = await setup();
  gateway.tokens.set('alice', 7);
  await client.auth('alice');
  const states: ConnectionState[] = [];
  client.on('state', (s) => states.push(s));
  let reconnectedEvents = 0;
  client.on('reconnected', () => reconnectedEvents++);
  gateway.intercept = (connection, m) => m.type === 'auth' && connection !== gateway.connections[0];
  gateway.dropAll();
  const second = await gateway.connection(1);
  await gateway.until(() => second.received.some((m) => m.type === 'auth'), 'the replayed auth');
  client.close();
  gateway.send(second, { type: 'auth_ok', userId: 7, id: second.received[0]!.id });
  await gateway.until(() => second.closed, 'the client to close its socket');
  assert.deepEqual(states, ['reconnecting', 'closed']);
  assert.equal(reconnectedEvents, 0);
});

test('close() from a listener in the middle of the restore is final', async () => {
  const { gateway, client } = await setup();
  gateway.tokens.set('alice', 7);
  await client.auth('alice');
  await client.subscribe('orders', () => {});
  gateway.retainedFrom.set(7, 5); // the resubscribe will answer recovered:false
  gateway.publishOrder(orderFilled(7, 1));
  await client.ping();
  const states: ConnectionState[] = [];
  client.on('state', (s) => states.push(s));
  // The app's resync handler decides to give up; the restore's own continuation runs later.
  client.on('resync', () => client.close());
  for (let seq = 2; seq <= 9; seq++) gateway.record(orderFilled(7, seq));
  gateway.dropAll();
  const second = await gateway.connection(1);
  await gateway.until(() => second.closed, 'the client to close its socket');
  await client.ping().catch(() => {}); // let every pending continuation run
  assert.deepEqual(states, ['reconnecting', 'closed']);
  assert.equal(client.state, 'closed');
});

test('a request in flight rejects with connection_closed on a drop; a queued one waits for the next', async () => {
  const { gateway, client } = await setup();
  gateway.intercept = (connection, m) => m.type === 'ping' && connection === gateway.connections[0];
  await nextEvent(client, 'state', (s) => s === 'open');
  const inFlight = client.ping();
  const first = await gateway.connection(0);
  await gateway.until(() => first.received.some((m) => m.type === 'ping'), 'the ping');
  const reconnecting = nextEvent(client, 'state', (s) => s === 'reconnecting');
  gateway.dropAll();
  await assert.rejects(inFlight, (error: unknown) => {
    assert.ok(error instanceof ConnectionClosedError);
    assert.equal(error.code, 'connection_closed');
    return true;
  });
  await reconnecting;
  const queued = client.ping(); // made during the backoff: sent on the next connection
  assert.ok((await queued) >= 0);
  assert.equal(gateway.connections.length, 2);
});

test('a request without a reply rejects with timeout', async () => {
  const { gateway, client } = await setup({ requestTimeoutMs: 100 });
  gateway.intercept = (_c, m) => m.type === 'ping';
  await assert.rejects(client.ping(), (error: unknown) => {
    assert.ok(error instanceof TimeoutError);
    assert.equal(error.code, 'timeout');
    return true;
  });
  assert.equal(client.state, 'open');
});

test('a handler or listener that throws does not stop delivery', async () => {
  const { gateway, client, warnings } = await setup();
  const good = collector<PriceMessage>(gateway);
  let thrown = 0;
  await client.subscribe('prices', () => {
    thrown++;
    throw new Error('broken component');
  });
  await client.subscribe('prices', good.handler);
  client.on('error', () => {
    throw new Error('broken listener');
  });
  const heard = nextEvent<ServerError>(client, 'error');
  gateway.publishPrice(price('BTC', '1'));
  gateway.send(await gateway.connection(0), { type: 'error', code: 'rate_limited', message: 'slow down' });
  gateway.publishPrice(price('BTC', '2'));
  await good.atLeast(2);
  assert.equal((await heard).code, 'rate_limited');
  assert.equal(thrown, 2);
  assert.ok(warnings.length >= 3, 'each throw is logged');
  assert.ok((await client.ping()) >= 0);
});

test('a server error not tied to a request is emitted; a revoked session is not replayed', async () => {
  const { gateway, client } = await setup();
  gateway.tokens.set('alice', 7);
  await client.auth('alice');
  const revoked = nextEvent<ServerError>(client, 'error');
  gateway.send(await gateway.connection(0), {
    type: 'error',
    code: 'session_revoked',
    message: 'logged out elsewhere',
  });
  assert.equal((await revoked).code, 'session_revoked');
  const reconnected = nextEvent(client, 'reconnected');
  gateway.dropAll();
  await reconnected;
  assert.deepEqual(types(await gateway.connection(1)), []);
});

test("signing in as another user ends the first user's private subscriptions, also across a reconnect", async () => {
  const { gateway, client } = await setup();
  gateway.tokens.set('alice', 7);
  gateway.tokens.set('bob', 8);
  await client.auth('alice');
  await client.subscribe('orders', () => {});
  await client.subscribe('portfolio', () => {});
  assert.deepEqual(await client.auth('bob'), { userId: 8 });
  const reconnected = nextEvent(client, 'reconnected');
  gateway.dropAll();
  await reconnected;
  // Bob's events must not reach handlers Alice's session set up.
  assert.deepEqual(types(await gateway.connection(1)), ['auth']);
});

test('a token refused after a reconnect is forgotten: private subscriptions end, public ones come back', async () => {
  const { gateway, client } = await setup();
  gateway.tokens.set('alice', 7);
  await client.auth('alice');
  const prices = collector<PriceMessage>(gateway);
  await client.subscribe('orders', () => {});
  await client.subscribe('prices', prices.handler);
  gateway.tokens.delete('alice');
  const errors: ServerError[] = [];
  client.on('error', (e) => errors.push(e));
  const reconnected = nextEvent(client, 'reconnected');
  gateway.dropAll();
  await reconnected;
  assert.deepEqual(
    errors.map((e) => [e.code, e.channel]),
    [
      ['auth_failed', undefined],
      ['auth_required', 'orders'],
    ],
  );
  gateway.publishPrice(price('BTC', '1'));
  await prices.atLeast(1);

  const again = nextEvent(client, 'reconnected');
  gateway.dropAll();
  await again;
  assert.deepEqual(
    (await gateway.connection(2)).received.map((m) => [m.type, m.channel]),
    [['subscribe', 'prices']],
  );
});

test('a transient refusal while restoring (internal_error) keeps the token, retries on a new connection', async () => {
  const { gateway, client } = await setup();
  gateway.tokens.set('alice', 7);
  await client.auth('alice');
  gateway.intercept = (connection, m) => {
    if (m.type !== 'auth' || connection !== gateway.connections[1]) return false;
    gateway.send(connection, { type: 'error', code: 'internal_error', message: 'session store down', id: m.id });
    return true;
  };
  const errors: ServerError[] = [];
  client.on('error', (e) => errors.push(e));
  const reconnected = nextEvent(client, 'reconnected');
  gateway.dropAll();
  await reconnected;
  const third = await gateway.connection(2);
  assert.deepEqual(third.received[0], { type: 'auth', token: 'alice', id: third.received[0]!.id });
  assert.deepEqual(errors, [], 'nothing the app has to act on');
});

test('a close with 1008 (policy violation) is still followed by a reconnect', async () => {
  const { gateway, client } = await setup();
  await nextEvent(client, 'state', (s) => s === 'open');
  const reconnected = nextEvent(client, 'reconnected');
  gateway.closeAll(1008, 'flooding');
  await reconnected;
  assert.equal(client.state, 'open');
});

test('invalid options fail at connect() with a message naming the option', () => {
  assert.throws(() => connect('ws://127.0.0.1:1', { WebSocket: 42 }), /options\.WebSocket/);
  assert.throws(
    () => connect('ws://127.0.0.1:1', { WebSocket, reconnect: { baseDelayMs: 500, maxDelayMs: 100 } }),
    /reconnect\.maxDelayMs.*reconnect\.baseDelayMs/,
  );
  assert.throws(() => connect('ws://127.0.0.1:1', { WebSocket, requestTimeoutMs: 0 }), /requestTimeoutMs/);
  assert.throws(() => connect('ws://127.0.0.1:1', { WebSocket, pingIntervalMs: -1 }), /pingIntervalMs/);
  assert.throws(() => connect('ws://127.0.0.1:1', { WebSocket, pongTimeoutMs: 2 ** 31 }), /pongTimeoutMs/);
  assert.throws(() => connect('ws://127.0.0.1:1', { WebSocket, openTimeoutMs: 0 }), /openTimeoutMs/);
  if (typeof (globalThis as { WebSocket?: unknown }).WebSocket !== 'function') {
    assert.throws(() => connect('ws://127.0.0.1:1'), /options\.WebSocket/);
  }
});

test('a server that takes the connection but never answers the upgrade: the client gives up, retries', async () => {
  // Plain TCP: takes the connection and the upgrade request, answers nothing.
  const held: net.Socket[] = [];
  let closed = 0;
  let changed = () => {};
  const server = net.createServer((socket) => {
    held.push(socket);
    changed();
    socket.on('close', () => {
      closed++;
      changed();
    });
    socket.resume();
  });
  /** Resolves once `check` holds, re-checked on each connection and each close. */
  const until = async (check: () => boolean, what: string) => {
    while (!check()) await withTimeout(new Promise<void>((resolve) => (changed = resolve)), 5000, what);
  };
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(
    () =>
      new Promise<void>((resolve) => {
        for (const socket of held) socket.destroy();
        server.close(() => resolve());
      }),
  );
  const { port } = server.address() as net.AddressInfo;
  const warnings: unknown[][] = [];
  const client = connect(`ws://127.0.0.1:${port}`, {
    WebSocket,
    openTimeoutMs: 100,
    reconnect: { baseDelayMs: 5, maxDelayMs: 20 },
    logger: { warn: (...args: unknown[]) => warnings.push(args) },
  });
  cleanups.push(() => client.close());
  await until(() => held.length >= 3, 'three connection attempts');
  assert.equal(client.state, 'reconnecting');
  assert.ok(warnings.some((w) => String(w[0]).includes('did not open within 100 ms')));
  // Each attempt before the last one was given up by the client, which closed it.
  await until(() => closed >= 2, 'the first two attempts closed by the client');
});

test('a quiet connection that answers the watchdog ping is kept', async () => {
  const { gateway, client } = await setup({ pingIntervalMs: 20, pongTimeoutMs: 2000 });
  await nextEvent(client, 'state', (s) => s === 'open');
  const first = await gateway.connection(0);
  const watchdogPings = () => first.received.filter((m) => m.type === 'ping' && m.id === undefined).length;
  await gateway.until(() => watchdogPings() >= 3, 'three watchdog pings');
  assert.equal(gateway.connections.length, 1);
  assert.equal(client.state, 'open');
});

test('a gateway that stops answering but keeps the connection is noticed; the client reconnects, resumes', async () => {
  // The pong timeout leaves room for a stall of this loaded machine: a false "dead" would reconnect twice.
  const { gateway, client, warnings } = await setup({ pingIntervalMs: 50, pongTimeoutMs: 300 });
  gateway.tokens.set('alice', 7);
  await client.auth('alice');
  const orders = collector<OrderMessage>(gateway);
  await client.subscribe('orders', orders.handler);
  gateway.publishOrder(orderFilled(7, 1));
  await orders.atLeast(1);

  const first = await gateway.connection(0);
  const states: ConnectionState[] = [];
  client.on('state', (s) => states.push(s));
  const reconnected = nextEvent(client, 'reconnected');
  gateway.stopAnswering(first);
  gateway.record(orderFilled(7, 2)); // committed while the client sits on the frozen socket
  await reconnected;
  assert.equal(first.closed, false, 'the frozen TCP connection is still open: only the watchdog could tell');
  assert.ok(warnings.some((w) => String(w[0]).includes('connection is dead')));

  const second = await gateway.connection(1);
  assert.deepEqual(
    second.received.filter((m) => m.type !== 'ping').map((m) => [m.type, m.channel, m.since]),
    [
      ['auth', undefined, undefined],
      ['subscribe', 'orders', 1],
    ],
  );
  await orders.atLeast(2);
  gateway.publishOrder(orderFilled(7, 3));
  await orders.atLeast(3);
  assert.deepEqual(
    orders.messages.map((m) => m.seq),
    [1, 2, 3],
  );
  assert.deepEqual(states, ['reconnecting', 'open']);
});
