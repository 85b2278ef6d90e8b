import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { count } from 'drizzle-orm';
import { MemoryBroker } from '@repo/broker';
import { openDatabase, schema, type Database } from '@repo/db';
import { API_ERRORS, type Api } from '../src/index.ts';
import { createTestDatabase } from '@repo/test-support';
import { bearer, makeApi, register, setPrice } from './support.ts';

/**
 * Every endpoint, every method, on a real PostgreSQL: generated bodies, content types, query
 * strings and Authorization headers. Each answer is a success of that route or a documented
 * 4xx with a JSON `{"error":{"code","message"}}` whose code matches the status; never a 500;
 * and nothing is stored by a request that was refused.
 */

const ROUTES = [
  '/auth/register',
  '/auth/login',
  '/auth/logout',
  '/orders',
  '/portfolio',
  '/prices',
  '/candles',
  '/health',
  '/metrics',
  '/config',
  '/nope',
  '/orders/1',
  '/../etc/passwd',
];
const METHODS = ['GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'HEAD'] as const;

describe('HTTP fuzz on every endpoint', () => {
  let database: Awaited<ReturnType<typeof createTestDatabase>>;
  let db: Database;
  let broker: MemoryBroker;
  let api: Api;
  let token: string;

  before(async () => {
    database = await createTestDatabase('tw_fuzz');
    db = await openDatabase({ url: database.url });
    broker = new MemoryBroker();
    api = makeApi(db, broker, {
      rateLimits: {
        perAddress: { max: 100_000, windowMs: 60_000 },
        registerPerAddress: { max: 100_000, windowMs: 60_000 },
        candlesPerAddress: { max: 100_000, windowMs: 60_000 },
      },
    });
    await setPrice(broker, 'SOL', '100');
    ({ token } = await register(api));
  });
  after(async () => {
    await api.close();
    await db.close();
    await broker.close();
    await database.drop();
  });

  async function rows(): Promise<Record<'users' | 'sessions' | 'orders' | 'outbox', number>> {
    const out = { users: 0, sessions: 0, orders: 0, outbox: 0 };
    for (const [name, table] of Object.entries({
      users: schema.users,
      sessions: schema.sessions,
      orders: schema.orders,
      outbox: schema.outbox,
    })) {
      const [row] = await db.drizzle.select({ n: count() }).from(table);
      out[name as keyof typeof out] = Number(row?.n ?? 0);
    }
    return out;
  }

  const json = fc.jsonValue({ maxDepth: 4 });
  const body = fc.oneof(
    json.map((v) => JSON.stringify(v)),
    fc
      .dictionary(
        fc.constantFrom('__proto__', 'constructor', 'username', 'password', 'symbol', 'side', 'size', 'x'),
        json,
        { maxKeys: 4 },
      )
      .map((d) => JSON.stringify(d)),
    fc.constantFrom(
      '{"__proto__":{"admin":true}}',
      '{"constructor":{"prototype":{"admin":true}}}',
      '[[[[[[[[[[',
      '{"a":1e999}',
      'x'.repeat(20_000),
      '',
    ),
    fc.string({ maxLength: 200 }),
    fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.from(b).toString('latin1')),
  );
  const contentType = fc.constantFrom(
    undefined,
    'application/json',
    'application/json; charset=utf-8',
    'text/plain',
    'application/x-www-form-urlencoded',
    'multipart/form-data; boundary=x',
    'application/xml',
    '',
  );
  /** Never a valid token for a writing route, so refused requests can be told from stored ones. */
  const badAuth = fc.constantFrom(
    undefined,
    '',
    'Bearer',
    'Bearer ',
    'Basic dXNlcjpwYXNz',
    `Bearer ${'a'.repeat(5000)}`,
    'Bearer 00000000000000000000000000000000',
    'bearer x y',
    'Bearer \u0000',
  );
  const query = fc.oneof(
    fc.constant(''),
    fc
      .dictionary(
        fc.constantFrom('limit', 'before', 'x', '__proto__', 'limit[]'),
        fc.oneof(
          fc.string({ maxLength: 12 }),
          fc.integer().map(String),
          fc.constantFrom('-1', '0', '101', '1e3', '9007199254740993'),
        ),
        { maxKeys: 3 },
      )
      .map((d) => `?${new URLSearchParams(d).toString()}`),
  );

  // Mostly the real routes with their own methods; the rest probes everything else.
  const routeArb = fc.oneof(
    { weight: 4, arbitrary: fc.constantFrom(...ROUTES.slice(0, 9)) },
    { weight: 1, arbitrary: fc.constantFrom(...ROUTES) },
  );
  const methodArb = fc.oneof(
    { weight: 4, arbitrary: fc.constantFrom('GET' as const, 'POST' as const) },
    { weight: 1, arbitrary: fc.constantFrom(...METHODS) },
  );

  it('answers each generated request with success or a documented 4xx, never 500; stores nothing refused', async () => {
    const before = await rows();
    const statuses = new Map<number, number>();
    await fc.assert(
      fc.asyncProperty(
        routeArb,
        methodArb,
        body,
        contentType,
        badAuth,
        query,
        fc.boolean(),
        async (route, method, payload, type, auth, qs, useToken) => {
          const headers: Record<string, string> = {};
          if (type !== undefined) headers['content-type'] = type;
          // The valid token only on reads: a write with it could legitimately store an order.
          if (useToken && method === 'GET') Object.assign(headers, bearer(token));
          else if (auth !== undefined) headers.authorization = auth;
          const withBody = method !== 'GET' && method !== 'HEAD' && method !== 'OPTIONS';
          const response = await api.app.inject({
            method,
            url: `${route}${qs}`,
            headers,
            ...(withBody ? { payload } : {}),
          });
          statuses.set(response.statusCode, (statuses.get(response.statusCode) ?? 0) + 1);
          const request = `${method} ${route}${qs} ${type ?? '-'} ${JSON.stringify(payload.slice(0, 80))}`;
          const context = `${request} -> ${response.statusCode} ${response.body.slice(0, 200)}`;
          assert.ok(response.statusCode < 500, context);
          if (response.statusCode >= 400 && method !== 'HEAD') {
            const parsed = JSON.parse(response.body) as { error?: { code?: string; message?: string } };
            assert.ok(
              parsed.error && typeof parsed.error.code === 'string' && typeof parsed.error.message === 'string',
              context,
            );
            assert.ok(parsed.error.code in API_ERRORS, context);
            assert.equal(API_ERRORS[parsed.error.code as keyof typeof API_ERRORS], response.statusCode, context);
            assert.equal(response.body.includes(token), false, context);
          }
          if (response.statusCode < 300 && method === 'POST') {
            // Only a register or login with a well-formed body may succeed without a token.
            assert.ok(route === '/auth/register' || route === '/auth/login', context);
          }
        },
      ),
      { numRuns: 1500 },
    );
    const after = await rows();
    const registered = after.users - before.users;
    assert.equal(after.orders, before.orders, 'no order stored');
    assert.equal(after.outbox, before.outbox, 'no event recorded');
    // Sessions only from registrations or logins that succeeded (generated bodies rarely do).
    assert.ok(after.sessions - before.sessions >= registered);
    console.log(
      `http fuzz: 1500 requests, statuses ${JSON.stringify(Object.fromEntries([...statuses].sort()))}; ` +
        `rows before ${JSON.stringify(before)} after ${JSON.stringify(after)}`,
    );
  });
});
