import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { EVENT_CHANNELS, MemoryBroker } from '@repo/broker';
import { openDatabase, type Database } from '@repo/db';
import { redisKeys } from '@repo/redis';
import { API_ERRORS, type Api } from '../src/index.ts';
import { waitFor } from '@repo/test-support';
import { bearer, capturingLogger, makeApi, register, setPrice, uniqueName } from './support.ts';

/**
 * The HTTP API on embedded PGlite and the in-process broker: every endpoint, its validation,
 * its errors and its security headers.
 */

let db: Database;
let broker: MemoryBroker;
let api: Api;
const published: { channel: string; message: string }[] = [];

before(async () => {
  db = await openDatabase({ dataDir: 'memory://' });
  broker = new MemoryBroker();
  for (const channel of Object.values(EVENT_CHANNELS)) {
    await broker.subscribe(channel, (message) => published.push({ channel, message }));
  }
  api = makeApi(db, broker, {
    symbols: ['SOL', 'BTC'],
    publicConfig: { wsUrl: 'ws://example.test:3001', wsPort: 3001 },
    allowedOrigins: ['http://allowed.test'],
  });
  await setPrice(broker, 'SOL', '231.45');
});

after(async () => {
  await api.close();
  await broker.close();
  await db.close();
});

async function orderCount(): Promise<number> {
  const { count } = await import('drizzle-orm');
  const { schema } = await import('@repo/db');
  const [row] = await db.drizzle.select({ n: count() }).from(schema.orders);
  return Number(row?.n ?? 0);
}

describe('auth', () => {
  it('registers, logs in and logs out; a logged-out token stops working at once', async () => {
    const username = uniqueName('alice');
    const registered = await api.app.inject({
      method: 'POST',
      url: '/auth/register',
      payload: { username, password: 'password123' },
    });
    assert.equal(registered.statusCode, 201);
    const { userId, token } = registered.json<{ userId: number; token: string }>();
    assert.ok(Number.isInteger(userId) && userId > 0);
    assert.match(token, /^[A-Za-z0-9_-]{43}$/);

    const login = await api.app.inject({
      method: 'POST',
      url: '/auth/login',
      payload: { username, password: 'password123' },
    });
    assert.equal(login.statusCode, 200);
    const second = login.json<{ userId: number; token: string }>();
    assert.equal(second.userId, userId);
    assert.notEqual(second.token, token);

    assert.equal((await api.app.inject({ method: 'GET', url: '/portfolio', headers: bearer(token) })).statusCode, 200);
    const logout = await api.app.inject({ method: 'POST', url: '/auth/logout', headers: bearer(token) });
    assert.equal(logout.statusCode, 204);
    assert.equal(logout.body, '');
    const after = await api.app.inject({ method: 'GET', url: '/portfolio', headers: bearer(token) });
    assert.equal(after.statusCode, 401);
    assert.equal(after.json<{ error: { code: string } }>().error.code, 'unauthorized');
    // The other session of the same user is untouched.
    assert.equal(
      (await api.app.inject({ method: 'GET', url: '/portfolio', headers: bearer(second.token) })).statusCode,
      200,
    );

    // Gateways hear about it: {"sessionId", "userId"} on the revocation channel.
    const revoked = await waitFor(() => published.find((p) => p.channel === redisKeys.CHANNELS.sessionRevoked()));
    const event = JSON.parse(revoked.message) as { sessionId: string; userId: number };
    assert.deepEqual(Object.keys(event), ['sessionId', 'userId']);
    assert.equal(event.userId, userId);
    // Logging out twice with the same token is a 401, not a crash.
    assert.equal(
      (await api.app.inject({ method: 'POST', url: '/auth/logout', headers: bearer(token) })).statusCode,
      401,
    );
  });

  it('answers 409 for a taken username and 401 for wrong credentials', async () => {
    const { username } = await register(api);
    const taken = await api.app.inject({
      method: 'POST',
      url: '/auth/register',
      payload: { username, password: 'otherpass1' },
    });
    assert.equal(taken.statusCode, 409);
    assert.deepEqual(taken.json(), { error: { code: 'username_taken', message: 'username is already taken' } });
    for (const payload of [
      { username, password: 'wrong-password' },
      { username: 'nobody_here', password: 'password123' },
      // Names no one can have registered, some of which PostgreSQL cannot even take as text.
      { username: `${username}\u0000`, password: 'password123' },
      { username: 'Ünïcode 名前', password: 'password123' },
      { username: '', password: '' },
    ]) {
      const response = await api.app.inject({ method: 'POST', url: '/auth/login', payload });
      assert.equal(response.statusCode, 401);
      assert.deepEqual(response.json(), {
        error: { code: 'invalid_credentials', message: 'wrong username or password' },
      });
    }
  });

  it('refuses invalid usernames and passwords with 400 and stores nothing', async () => {
    const cases: unknown[] = [
      { username: 'ab', password: 'password123' },
      { username: 'a'.repeat(33), password: 'password123' },
      { username: 'Upper', password: 'password123' },
      { username: 'with space', password: 'password123' },
      { username: 'dash-name', password: 'password123' },
      { username: 'valid_name', password: 'short7!' },
      { username: 'valid_name', password: 'p'.repeat(129) },
      { username: 'valid_name', password: 12345678 },
      { username: 42, password: 'password123' },
      { username: 'valid_name' },
      { username: 'valid_name', password: 'password123', admin: true },
      [],
      'valid_name',
    ];
    for (const payload of cases) {
      const response = await api.app.inject({
        method: 'POST',
        url: '/auth/register',
        headers: { 'content-type': 'application/json' },
        payload: JSON.stringify(payload),
      });
      assert.equal(response.statusCode, 400, JSON.stringify(payload));
      const body = response.json<{ error: { code: string; message: string } }>();
      assert.equal(body.error.code, 'invalid_request');
      assert.ok(body.error.message.length > 0);
    }
    assert.equal(await db.users.findCredentials('valid_name'), null);
    // 8 and 128 characters are fine; characters are code points, not UTF-16 units.
    for (const password of ['12345678', 'p'.repeat(128), '🔑'.repeat(8)]) {
      assert.equal(
        (await api.app.inject({ method: 'POST', url: '/auth/register', payload: { username: uniqueName(), password } }))
          .statusCode,
        201,
      );
    }
  });

  it('refuses missing, malformed and unknown tokens with 401', async () => {
    const headers = [
      {},
      { authorization: '' },
      { authorization: 'Bearer' },
      { authorization: 'Basic dXNlcjpwYXNz' },
      { authorization: 'Bearer not-a-token' },
      { authorization: `Bearer ${'A'.repeat(43)}` },
      { authorization: `Bearer ${'A'.repeat(5000)}` },
    ];
    for (const h of headers) {
      for (const [method, url] of [
        ['GET', '/portfolio'],
        ['GET', '/orders'],
        ['POST', '/orders'],
        ['POST', '/auth/logout'],
      ] as const) {
        const response = await api.app.inject({
          method,
          url,
          headers: h,
          payload: method === 'POST' ? { symbol: 'SOL', side: 'buy', size: '1' } : undefined,
        });
        assert.equal(response.statusCode, 401, `${method} ${url} ${JSON.stringify(h).slice(0, 60)}`);
        assert.equal(response.headers['www-authenticate'], 'Bearer');
        assert.equal(response.json<{ error: { code: string } }>().error.code, 'unauthorized');
      }
    }
  });
});

describe('orders', () => {
  it('fills a market buy at the latest price: 231.45 × 10, fee 0.23145', async () => {
    const { userId, token } = await register(api);
    const response = await api.app.inject({
      method: 'POST',
      url: '/orders',
      headers: bearer(token),
      payload: { symbol: 'SOL', side: 'buy', size: '10' },
    });
    assert.equal(response.statusCode, 201);
    const body = response.json<Record<string, unknown>>();
    assert.deepEqual(
      { ...body, timestamp: 'T', orderId: 'O' },
      {
        orderId: 'O',
        status: 'filled',
        symbol: 'SOL',
        side: 'buy',
        executedPrice: '231.45',
        executedSize: '10',
        fee: '0.23145',
        timestamp: 'T',
        seq: 1,
      },
    );

    const portfolio = await api.app.inject({ method: 'GET', url: '/portfolio', headers: bearer(token) });
    assert.deepEqual(portfolio.json(), {
      balances: [{ asset: 'USD', available: '7685.26855', locked: '0' }],
      positions: [
        { asset: 'BTC', size: '0', avgEntryPrice: '0' },
        { asset: 'SOL', size: '10', avgEntryPrice: '231.45' },
      ],
      version: 1,
      orderSeq: 1,
    });

    // Published after commit: order_filled, then portfolio, for this user.
    const mine = () => published.filter((p) => (JSON.parse(p.message) as { userId?: number }).userId === userId);
    await waitFor(() => mine().length >= 2);
    const [fill, update] = mine();
    assert.equal(fill!.channel, redisKeys.CHANNELS.orderFilled());
    assert.deepEqual(JSON.parse(fill!.message), {
      userId,
      orderId: body.orderId,
      side: 'buy',
      baseAsset: 'SOL',
      quoteAsset: 'USD',
      executedPrice: '231.45',
      executedSize: '10',
      fee: '0.23145',
      timestamp: body.timestamp,
      seq: 1,
    });
    assert.equal(update!.channel, redisKeys.CHANNELS.portfolioUpdate());
    assert.equal((JSON.parse(update!.message) as { version: number }).version, 1);
  });

  it('sells from the position with the fee taken from the proceeds', async () => {
    const { token } = await register(api);
    await api.app.inject({
      method: 'POST',
      url: '/orders',
      headers: bearer(token),
      payload: { symbol: 'SOL', side: 'buy', size: '2' },
    });
    const sell = await api.app.inject({
      method: 'POST',
      url: '/orders',
      headers: bearer(token),
      payload: { symbol: 'SOL', side: 'sell', size: '2' },
    });
    assert.equal(sell.statusCode, 201);
    assert.equal(sell.json<{ fee: string }>().fee, '0.04629');
    const portfolio = (await api.app.inject({ method: 'GET', url: '/portfolio', headers: bearer(token) })).json<{
      balances: { available: string }[];
      positions: { asset: string; size: string; avgEntryPrice: string }[];
    }>();
    // 10000 − 462.9 − 0.04629 + 462.9 − 0.04629
    assert.equal(portfolio.balances[0]!.available, '9999.90742');
    assert.deepEqual(
      portfolio.positions.find((p) => p.asset === 'SOL'),
      { asset: 'SOL', size: '0', avgEntryPrice: '0' },
    );
  });

  it('answers 422 for short funds, short position and no price, and stores and publishes each', async () => {
    const { userId, token } = await register(api);
    const cases = [
      [{ symbol: 'SOL', side: 'buy', size: '44' }, 'insufficient_funds'],
      [{ symbol: 'SOL', side: 'sell', size: '1' }, 'insufficient_position'],
      [{ symbol: 'BTC', side: 'buy', size: '0.1' }, 'no_price'],
    ] as const;
    for (const [payload, reason] of cases) {
      const response = await api.app.inject({ method: 'POST', url: '/orders', headers: bearer(token), payload });
      assert.equal(response.statusCode, 422, reason);
      const body = response.json<{ orderId: number; status: string; reason: string }>();
      assert.equal(body.status, 'rejected');
      assert.equal(body.reason, reason);
      assert.ok(body.orderId > 0);
    }
    const list = (await api.app.inject({ method: 'GET', url: '/orders', headers: bearer(token) })).json<{
      orders: { status: string; reason: string; seq: number }[];
    }>();
    assert.deepEqual(
      list.orders.map((o) => [o.status, o.reason, o.seq]),
      [
        ['rejected', 'no_price', 3],
        ['rejected', 'insufficient_position', 2],
        ['rejected', 'insufficient_funds', 1],
      ],
    );
    await waitFor(
      () =>
        published.filter(
          (p) =>
            p.channel === redisKeys.CHANNELS.orderRejected() &&
            (JSON.parse(p.message) as { userId: number }).userId === userId,
        ).length === 3,
    );
    const portfolio = (await api.app.inject({ method: 'GET', url: '/portfolio', headers: bearer(token) })).json<{
      balances: unknown;
      version: number;
    }>();
    assert.deepEqual(portfolio.balances, [{ asset: 'USD', available: '10000', locked: '0' }]);
    assert.equal(portfolio.version, 0);
  });

  it('refuses bad order input with a clear 400/415 and stores nothing', async () => {
    const { token } = await register(api);
    const before = await orderCount();
    const backlogBefore = await db.outbox.backlog();
    const raw = (payload: string, contentType = 'application/json') =>
      api.app.inject({
        method: 'POST',
        url: '/orders',
        headers: { ...bearer(token), 'content-type': contentType },
        payload,
      });
    const json = (payload: unknown) =>
      api.app.inject({ method: 'POST', url: '/orders', headers: bearer(token), payload: payload as object });

    const expectations: [Promise<{ statusCode: number; json(): unknown }>, number, string][] = [
      [raw('{"symbol":'), 400, 'invalid_json'],
      [raw('{"symbol":"SOL","side":"buy","size":"1",}'), 400, 'invalid_json'],
      [raw('{"__proto__":{"admin":true},"symbol":"SOL","side":"buy","size":"1"}'), 400, 'invalid_json'],
      [raw(''), 400, 'invalid_request'],
      [raw('[]'), 400, 'invalid_request'],
      [raw('"SOL"'), 400, 'invalid_request'],
      [raw('null'), 400, 'invalid_request'],
      [raw('symbol=SOL', 'application/x-www-form-urlencoded'), 415, 'unsupported_media_type'],
      [raw('{"symbol":"SOL","side":"buy","size":"1"}', 'text/plain'), 415, 'unsupported_media_type'],
      [json({ symbol: 'SOL', side: 'buy', size: 10 }), 400, 'invalid_request'],
      [json({ symbol: 'SOL', side: 'buy', size: null }), 400, 'invalid_request'],
      [json({ symbol: 'SOL', side: 'buy', size: ['1'] }), 400, 'invalid_request'],
      [json({ symbol: 'SOL', side: 'hold', size: '1' }), 400, 'invalid_request'],
      [json({ symbol: 5, side: 'buy', size: '1' }), 400, 'invalid_request'],
      [json({ symbol: 'SOL', side: 'buy' }), 400, 'invalid_request'],
      [json({ symbol: 'SOL', side: 'buy', size: '1', price: '1' }), 400, 'invalid_request'],
      [json({ symbol: 'SOL', side: 'buy', size: '-1' }), 400, 'invalid_request'],
      [json({ symbol: 'SOL', side: 'buy', size: '0' }), 400, 'invalid_request'],
      [json({ symbol: 'SOL', side: 'buy', size: '0.000' }), 400, 'invalid_request'],
      [json({ symbol: 'SOL', side: 'buy', size: '0.0000000001' }), 400, 'invalid_request'],
      [json({ symbol: 'SOL', side: 'buy', size: '1e3' }), 400, 'invalid_request'],
      [json({ symbol: 'SOL', side: 'buy', size: 'NaN' }), 400, 'invalid_request'],
      [json({ symbol: 'SOL', side: 'buy', size: '1000000000.1' }), 400, 'invalid_request'],
      [json({ symbol: 'SOL', side: 'buy', size: '9'.repeat(60) }), 400, 'invalid_request'],
      [json({ symbol: 'SOL', side: 'buy', size: '1'.repeat(100) }), 400, 'invalid_request'],
      [json({ symbol: 'ETH', side: 'buy', size: '1' }), 400, 'unknown_symbol'],
      [json({ symbol: 'sol', side: 'buy', size: '1' }), 400, 'unknown_symbol'],
      [json({ symbol: 'USD', side: 'buy', size: '1' }), 400, 'unknown_symbol'],
      [json({ a: { b: { c: { d: { e: { f: {} } } } } } }), 400, 'invalid_request'],
    ];
    for (const [promise, status, code] of expectations) {
      const response = await promise;
      const body = response.json() as { error: { code: string; message: string } };
      assert.equal(response.statusCode, status, JSON.stringify(body));
      assert.equal(body.error.code, code, JSON.stringify(body));
      assert.ok(body.error.message.length > 0 && body.error.message.length < 200);
    }
    const precise = await json({ symbol: 'SOL', side: 'buy', size: '0.0000000001' });
    assert.match(precise.json<{ error: { message: string } }>().error.message, /9 decimals/);

    const big = await raw(JSON.stringify({ symbol: 'SOL', side: 'buy', size: '1', pad: 'x'.repeat(20_000) }));
    assert.equal(big.statusCode, 413);
    assert.equal(big.json<{ error: { code: string } }>().error.code, 'payload_too_large');

    assert.equal(await orderCount(), before);
    assert.equal(await db.outbox.backlog(), backlogBefore);
  });

  it('fills exactly the concurrent orders that fit (20 at once), never overdrawing', async () => {
    await setPrice(broker, 'SOL', '1000');
    try {
      const { token } = await register(api);
      const responses = await Promise.all(
        Array.from({ length: 20 }, () =>
          api.app.inject({
            method: 'POST',
            url: '/orders',
            headers: bearer(token),
            payload: { symbol: 'SOL', side: 'buy', size: '1' },
          }),
        ),
      );
      const statuses = responses.map((r) => r.statusCode);
      assert.equal(statuses.filter((s) => s === 201).length, 9);
      assert.equal(statuses.filter((s) => s === 422).length, 11);
      const portfolio = (await api.app.inject({ method: 'GET', url: '/portfolio', headers: bearer(token) })).json<{
        balances: { available: string }[];
      }>();
      assert.equal(portfolio.balances[0]!.available, '999.1');
    } finally {
      await setPrice(broker, 'SOL', '231.45');
    }
  });

  it('lists orders newest first, page by page', async () => {
    const { token } = await register(api);
    for (const size of ['1', '2', '3', '4', '5']) {
      await api.app.inject({
        method: 'POST',
        url: '/orders',
        headers: bearer(token),
        payload: { symbol: 'SOL', side: 'buy', size },
      });
    }
    const page = async (query: string) => {
      const response = await api.app.inject({ method: 'GET', url: `/orders${query}`, headers: bearer(token) });
      return {
        status: response.statusCode,
        body: response.json<{ orders: { requestedSize: string }[]; nextBefore: number | null; seq: number }>(),
      };
    };
    const first = await page('?limit=2');
    assert.deepEqual(
      first.body.orders.map((o) => o.requestedSize),
      ['5', '4'],
    );
    assert.equal(first.body.seq, 5);
    const second = await page(`?limit=2&before=${first.body.nextBefore}`);
    assert.deepEqual(
      second.body.orders.map((o) => o.requestedSize),
      ['3', '2'],
    );
    const third = await page(`?limit=2&before=${second.body.nextBefore}`);
    assert.deepEqual(
      third.body.orders.map((o) => o.requestedSize),
      ['1'],
    );
    assert.equal(third.body.nextBefore, null);
    assert.equal((await page('')).body.orders.length, 5);
    for (const bad of ['?limit=0', '?limit=101', '?limit=abc', '?before=-1', '?before=1.5', '?page=2']) {
      const response = await page(bad);
      assert.equal(response.status, 400, bad);
    }
    // Another user sees none of them.
    const other = await register(api);
    const theirs = (await api.app.inject({ method: 'GET', url: '/orders', headers: bearer(other.token) })).json<{
      orders: unknown[];
    }>();
    assert.deepEqual(theirs.orders, []);
  });
});

describe('public endpoints', () => {
  it('GET /prices returns the latest known prices', async () => {
    const response = await api.app.inject({ method: 'GET', url: '/prices' });
    assert.equal(response.statusCode, 200);
    const prices = response.json<{ symbol: string; price: string; timestamp: string }[]>();
    assert.deepEqual(
      prices.map((p) => [p.symbol, p.price]),
      [['SOL', '231.45']],
    );
    assert.ok(!Number.isNaN(Date.parse(prices[0]!.timestamp)));
  });

  it('GET /health, /config and /metrics', async () => {
    const health = await api.app.inject({ method: 'GET', url: '/health' });
    assert.equal(health.statusCode, 200);
    assert.deepEqual(health.json(), { status: 'ok', database: 'up', broker: 'up' });
    assert.deepEqual((await api.app.inject({ method: 'GET', url: '/config' })).json(), {
      wsUrl: 'ws://example.test:3001',
      wsPort: 3001,
      symbols: ['SOL', 'BTC'],
      feeRate: '0.0001',
      maxPriceAgeMs: 600_000, // what support.ts configures
    });
    const metrics = await api.app.inject({ method: 'GET', url: '/metrics' });
    assert.equal(metrics.statusCode, 200);
    assert.match(metrics.headers['content-type'] as string, /text\/plain/);
    assert.match(metrics.body, /tradewire_api_orders_total\{outcome="filled",reason=""\} \d+/);
    assert.match(metrics.body, /tradewire_api_orders_total\{outcome="rejected",reason="insufficient_funds"\} \d+/);
    assert.match(metrics.body, /tradewire_api_outbox_backlog \d+/);
    assert.match(metrics.body, /tradewire_api_http_requests_total\{method="POST",route="\/orders",status="201"\} \d+/);
  });

  it('answers unknown routes with a JSON 404', async () => {
    const response = await api.app.inject({ method: 'GET', url: '/nope' });
    assert.equal(response.statusCode, 404);
    assert.deepEqual(response.json(), { error: { code: 'not_found', message: 'no such route' } });
  });
});

describe('security', () => {
  it('sends security headers', async () => {
    const response = await api.app.inject({ method: 'GET', url: '/health' });
    assert.equal(response.headers['x-content-type-options'], 'nosniff');
    assert.match(response.headers['content-security-policy'] as string, /default-src 'self'/);
    // The configured gateway only, never any ws:/wss: origin.
    assert.match(
      response.headers['content-security-policy'] as string,
      /connect-src 'self' ws:\/\/example\.test:3001(;|$)/,
    );
    assert.ok(response.headers['strict-transport-security']);
    assert.equal(response.headers['x-powered-by'], undefined);
  });

  it('sends the same security headers on errors, refusals and unknown routes', async () => {
    const healthy = await api.app.inject({ method: 'GET', url: '/health' });
    const names = ['content-security-policy', 'strict-transport-security', 'x-content-type-options', 'x-frame-options'];
    for (const request of [
      { method: 'GET', url: '/nope' },
      { method: 'POST', url: '/orders', payload: {} },
      { method: 'POST', url: '/auth/login', payload: 'not json', headers: { 'content-type': 'application/json' } },
    ] as const) {
      const response = await api.app.inject(request);
      assert.ok(response.statusCode >= 400, `${request.url} answered ${response.statusCode}`);
      for (const name of names) {
        assert.equal(response.headers[name], healthy.headers[name], `${name} on ${request.method} ${request.url}`);
      }
    }
  });

  it('answers a URL that does not decode with 400 invalid_request and the security headers', async () => {
    /** One request written as is: HTTP clients would re-encode a malformed URL before sending it. */
    const raw = (port: number, target: string) =>
      new Promise<{ status: number; headers: Map<string, string>; body: string }>((resolve, reject) => {
        const socket = connect(port, '127.0.0.1', () =>
          socket.end(`GET ${target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`),
        );
        let text = '';
        socket.setEncoding('utf8');
        socket.on('data', (chunk: string) => (text += chunk));
        socket.on('error', reject);
        socket.on('close', () => {
          const [head = '', body = ''] = text.split('\r\n\r\n');
          const [statusLine = '', ...lines] = head.split('\r\n');
          const headers = new Map(
            lines.map((line) => [
              line.slice(0, line.indexOf(':')).toLowerCase(),
              line.slice(line.indexOf(':') + 1).trim(),
            ]),
          );
          resolve({ status: Number(statusLine.split(' ')[1]), headers, body });
        });
      });
    const listening = makeApi(db, broker, { publicConfig: { wsUrl: 'ws://example.test:3001', wsPort: 3001 } });
    try {
      const { port } = new URL(await listening.app.listen({ port: 0, host: '127.0.0.1' }));
      const healthy = await raw(Number(port), '/health');
      assert.equal(healthy.status, 200);
      for (const target of ['/orders%zz', '/%', '/candles%E0%A4%A?symbol=SOL']) {
        const answer = await raw(Number(port), target);
        assert.equal(answer.status, 400, target);
        assert.match(answer.headers.get('content-type') ?? '', /^application\/json/, target);
        assert.deepEqual(JSON.parse(answer.body), {
          error: { code: 'invalid_request', message: 'the request URL is not valid' },
        });
        for (const name of ['content-security-policy', 'strict-transport-security', 'x-content-type-options']) {
          assert.equal(answer.headers.get(name), healthy.headers.get(name), `${name} for ${target}`);
        }
      }
    } finally {
      await listening.close();
    }
  });

  it('names the gateway on the page host in connect-src when no wsUrl is configured', async () => {
    const site = makeApi(db, broker, { publicConfig: { wsUrl: null, wsPort: 4001 } });
    try {
      const csp = async (host: string) =>
        (await site.app.inject({ method: 'GET', url: '/health', headers: { host } })).headers[
          'content-security-policy'
        ] as string;
      assert.match(await csp('localhost:3000'), /connect-src 'self' ws:\/\/localhost:4001 wss:\/\/localhost:4001(;|$)/);
      assert.match(await csp('[::1]:3000'), /connect-src 'self' ws:\/\/\[::1\]:4001 wss:\/\/\[::1\]:4001(;|$)/);
      // A Host header that is not a plain hostname cannot write into the policy.
      for (const forged of ['evil.test; script-src *', "x' 'unsafe-inline", 'a b']) {
        const policy = await csp(forged);
        assert.match(policy, /connect-src 'self' 'self'(;|$)/, forged);
        assert.doesNotMatch(policy, /evil|script-src \*|'x'/, forged);
      }
      assert.doesNotMatch(await csp('localhost:3000'), /ws: |wss: /);
    } finally {
      await site.close();
    }
  });

  it('serves /metrics to loopback only, or with METRICS_TOKEN to the bearer of it only', async () => {
    const scrape = (target: Api, remoteAddress: string, authorization?: string) =>
      target.app.inject({
        method: 'GET',
        url: '/metrics',
        remoteAddress,
        headers: authorization ? { authorization } : {},
      });
    assert.equal((await scrape(api, '127.0.0.1')).statusCode, 200);
    assert.equal((await scrape(api, '::1')).statusCode, 200);
    const remote = await scrape(api, '203.0.113.5');
    assert.equal(remote.statusCode, 403);
    assert.equal(remote.json<{ error: { code: string } }>().error.code, 'forbidden');
    assert.doesNotMatch(remote.body, /tradewire_api/);

    const guarded = makeApi(db, broker, { metricsToken: 'scrape-token-0123456789' });
    try {
      assert.equal((await scrape(guarded, '203.0.113.5', 'Bearer scrape-token-0123456789')).statusCode, 200);
      for (const [address, auth] of [
        ['127.0.0.1', undefined],
        ['203.0.113.5', 'Bearer scrape-token-012345678'],
        ['203.0.113.5', undefined],
      ] as const) {
        const refused = await scrape(guarded, address, auth);
        assert.equal(refused.statusCode, 401, `${address} ${auth}`);
        assert.equal(refused.headers['www-authenticate'], 'Bearer');
      }
    } finally {
      await guarded.close();
    }
    assert.throws(() => makeApi(db, broker, { metricsToken: 'short' }), /metrics token/);
  });

  it('allows CORS only for allowed origins', async () => {
    const preflight = (origin: string) =>
      api.app.inject({
        method: 'OPTIONS',
        url: '/orders',
        headers: {
          origin,
          'access-control-request-method': 'POST',
          'access-control-request-headers': 'authorization,content-type',
        },
      });
    const allowed = await preflight('http://allowed.test');
    assert.equal(allowed.headers['access-control-allow-origin'], 'http://allowed.test');
    assert.match(String(allowed.headers['access-control-allow-headers']), /Authorization/);
    const denied = await preflight('http://evil.test');
    assert.equal(denied.headers['access-control-allow-origin'], undefined);
    const simple = await api.app.inject({ method: 'GET', url: '/prices', headers: { origin: 'http://evil.test' } });
    assert.equal(simple.headers['access-control-allow-origin'], undefined);
  });

  it('throttles logins per username and per address with 429 and Retry-After', async () => {
    const throttled = makeApi(db, broker, {
      rateLimits: { perUsername: { max: 3, windowMs: 60_000 }, perAddress: { max: 6, windowMs: 60_000 } },
    });
    try {
      const { username } = await register(throttled);
      const login = (payload: object, remoteAddress = '10.0.0.1') =>
        throttled.app.inject({ method: 'POST', url: '/auth/login', payload, remoteAddress });
      for (let i = 0; i < 3; i++) {
        assert.equal((await login({ username, password: 'wrong-password' }, `10.0.1.${i}`)).statusCode, 401);
      }
      // The username is locked now, from any address and even with the right password.
      const locked = await login({ username, password: 'password123' }, '10.0.2.1');
      assert.equal(locked.statusCode, 429);
      assert.equal(locked.json<{ error: { code: string } }>().error.code, 'rate_limited');
      const retryAfter = Number(locked.headers['retry-after']);
      assert.ok(retryAfter >= 1 && retryAfter <= 60, String(retryAfter));

      // Per address: six attempts of any usernames, then 429.
      for (let i = 0; i < 6; i++)
        assert.equal((await login({ username: `ghost_${i}`, password: 'whatever1' }, '10.0.3.1')).statusCode, 401);
      const flooded = await login({ username: 'ghost_7', password: 'whatever1' }, '10.0.3.1');
      assert.equal(flooded.statusCode, 429);
      assert.ok(Number(flooded.headers['retry-after']) >= 1);
      // Another address is not affected.
      assert.equal((await login({ username: 'ghost_8', password: 'whatever1' }, '10.0.3.2')).statusCode, 401);
      const metrics = await throttled.app.inject({ method: 'GET', url: '/metrics' });
      assert.match(metrics.body, /tradewire_api_login_throttled_total\{scope="username"\} 1/);
      assert.match(metrics.body, /tradewire_api_login_throttled_total\{scope="address"\} 1/);
    } finally {
      await throttled.close();
    }
  });

  it('answers an unexpected error with a plain 500, logs it, and never logs a token or password', async () => {
    const { logger, text } = capturingLogger();
    const secret = 'postgres://admin:hunter2@db.internal/prod';
    const failing: Database = {
      ...db,
      portfolio: {
        get: () => Promise.reject(new Error(`connection to ${secret} refused`)),
      },
    };
    const broken = makeApi(failing, broker, { logger });
    try {
      const { token } = await register(broken, uniqueName(), 'sekret-password');
      await broken.app.inject({
        method: 'POST',
        url: '/auth/login',
        payload: { username: 'nobody', password: 'sekret-password' },
      });
      const response = await broken.app.inject({ method: 'GET', url: '/portfolio', headers: bearer(token) });
      assert.equal(response.statusCode, 500);
      assert.deepEqual(response.json(), { error: { code: 'internal_error', message: 'internal server error' } });
      assert.ok(!response.body.includes('hunter2'));
      const logs = text();
      assert.ok(logs.includes('hunter2'), 'the cause is logged for operators');
      assert.ok(!logs.includes(token), 'tokens never reach logs');
      assert.ok(!logs.includes('sekret-password'), 'passwords never reach logs');
    } finally {
      await broken.close();
    }
  });

  it('rejects bad options at construction with a message naming them', () => {
    assert.throws(() => makeApi(db, broker, { feeRate: '1' }), /feeRate/);
    assert.throws(() => makeApi(db, broker, { feeRate: '-0.1' }), /feeRate/);
    assert.throws(() => makeApi(db, broker, { symbols: ['sol'] }), /symbol/);
    assert.throws(() => makeApi(db, broker, { symbols: [] }), /symbols/);
    assert.throws(() => makeApi(db, broker, { startingBalanceUsd: '1e4' }), /startingBalanceUsd/);
    assert.throws(() => makeApi(db, broker, { sessionTtlMs: 0 }), /sessionTtlMs/);
  });

  it('expires sessions after sessionTtlMs', async () => {
    let now = Date.now();
    const shortLived = makeApi(db, broker, { sessionTtlMs: 60_000, now: () => new Date(now) });
    try {
      const { token } = await register(shortLived);
      assert.equal(
        (await shortLived.app.inject({ method: 'GET', url: '/portfolio', headers: bearer(token) })).statusCode,
        200,
      );
      now += 60_001;
      assert.equal(
        (await shortLived.app.inject({ method: 'GET', url: '/portfolio', headers: bearer(token) })).statusCode,
        401,
      );
    } finally {
      await shortLived.close();
    }
  });
});

describe('web app', () => {
  let dir: string;
  let site: Api;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tradewire-web-'));
    await writeFile(join(dir, 'index.html'), '<!doctype html><title>tradewire</title>');
    await writeFile(join(dir, 'app.js'), 'console.log(1)');
    site = makeApi(db, broker, { staticDir: dir });
  });
  after(async () => {
    await site.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('serves the built page at /, its assets, and the page for client-side routes', async () => {
    const root = await site.app.inject({ method: 'GET', url: '/', headers: { accept: 'text/html' } });
    assert.equal(root.statusCode, 200);
    assert.match(root.body, /<title>tradewire/);
    const asset = await site.app.inject({ method: 'GET', url: '/app.js' });
    assert.equal(asset.statusCode, 200);
    assert.match(asset.headers['content-type'] as string, /javascript/);
    const route = await site.app.inject({
      method: 'GET',
      url: '/trade/SOL',
      headers: { accept: 'text/html,application/xhtml+xml' },
    });
    assert.equal(route.statusCode, 200);
    assert.match(route.body, /<title>tradewire/);
    // API routes and non-HTML requests keep their JSON answers.
    assert.equal(
      (await site.app.inject({ method: 'GET', url: '/orders', headers: { accept: 'text/html' } })).statusCode,
      401,
    );
    assert.equal((await site.app.inject({ method: 'GET', url: '/missing.js' })).statusCode, 404);
  });
});

describe('fuzzed bodies', () => {
  const json = fc.jsonValue({ maxDepth: 4 });
  const nasty = fc.constantFrom('__proto__', 'constructor', 'prototype', 'toString', '', 'size', 'symbol');
  /** Objects near the real shape: known keys with wrong or right values, plus odd extra keys. */
  const near = (fields: Record<string, fc.Arbitrary<unknown>>) =>
    fc
      .tuple(
        fc.record(fields, { requiredKeys: [] }),
        fc.dictionary(fc.oneof(nasty, fc.string({ maxLength: 8 })), json, { maxKeys: 2 }),
        fc.boolean(),
      )
      .map(([known, extra, withExtra]) => JSON.stringify(withExtra ? { ...extra, ...known } : known));
  const body = (fields: Record<string, fc.Arbitrary<unknown>>) =>
    fc.oneof(
      near(fields),
      json.map((v) => JSON.stringify(v)),
      fc.string({ maxLength: 200 }),
      fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.from(b).toString('latin1')),
    );
  const decimalish = fc.oneof(
    fc.stringMatching(/^-?\d{1,25}(\.\d{0,12})?(e\d)?$/),
    fc.constantFrom('0', '1', '0.000000001', '1e3', 'NaN', '-0', '١'),
    fc.double(),
    json,
  );

  const expectErrorShape = (status: number, payload: string) => {
    const parsed = JSON.parse(payload) as { error?: { code?: string; message?: string } };
    assert.ok(parsed.error && typeof parsed.error.code === 'string' && parsed.error.code in API_ERRORS, payload);
    assert.equal(API_ERRORS[parsed.error.code as keyof typeof API_ERRORS], status, payload);
  };

  it('POST /orders: every body gets 201, 422 or a documented 4xx; only 201/422 store an order', async () => {
    const { token } = await register(api);
    const before = await orderCount();
    let stored = 0;
    await fc.assert(
      fc.asyncProperty(
        body({
          symbol: fc.oneof(fc.constantFrom('SOL', 'BTC', 'sol', 'USD'), json),
          side: fc.oneof(fc.constantFrom('buy', 'sell'), json),
          size: decimalish,
        }),
        async (payload) => {
          const response = await api.app.inject({
            method: 'POST',
            url: '/orders',
            headers: { ...bearer(token), 'content-type': 'application/json' },
            payload,
          });
          if (response.statusCode === 201 || response.statusCode === 422) {
            stored++;
            return;
          }
          assert.ok(response.statusCode >= 400 && response.statusCode < 500, `${response.statusCode} for ${payload}`);
          expectErrorShape(response.statusCode, response.body);
        },
      ),
      { numRuns: 300 },
    );
    assert.equal(await orderCount(), before + stored);
  });

  it('POST /auth/register and /auth/login: every body gets a documented answer, never a 500', async () => {
    const open = makeApi(db, broker, {
      rateLimits: {
        perAddress: { max: 100_000, windowMs: 60_000 },
        registerPerAddress: { max: 100_000, windowMs: 60_000 },
      },
    });
    try {
      for (const [url, ok] of [
        ['/auth/register', 201],
        ['/auth/login', 200],
      ] as const) {
        await fc.assert(
          fc.asyncProperty(
            body({
              username: fc.oneof(fc.stringMatching(/^[a-z0-9_]{1,40}$/), json),
              password: fc.oneof(fc.string({ maxLength: 140 }), json),
            }),
            async (payload) => {
              const response = await open.app.inject({
                method: 'POST',
                url,
                headers: { 'content-type': 'application/json' },
                payload,
              });
              if (response.statusCode === ok) return;
              assert.ok(
                response.statusCode >= 400 && response.statusCode < 500,
                `${url}: ${response.statusCode} for ${payload}`,
              );
              expectErrorShape(response.statusCode, response.body);
            },
          ),
          { numRuns: 200 },
        );
      }
    } finally {
      await open.close();
    }
  });
});
