import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { MemoryBroker } from '@repo/broker';
import { openDatabase, type CandleRow, type Database } from '@repo/db';
import { createTestDatabase } from '@repo/test-support';
import type { Api } from '../src/index.ts';
import { makeApi } from './support.ts';

const T0 = Date.parse('2030-05-01T00:00:00.000Z');
const MINUTE = 60_000;

type CandlesBody = {
  symbol: string;
  interval: string;
  candles: { t: number; o: string; h: string; l: string; c: string }[];
};
type ErrorBody = { error: { code: string; message: string } };

/** GET /candles behaves the same on both engines: one suite, run against each. */
function candlesEndpointSuite(name: string, open: () => Promise<{ db: Database; drop(): Promise<void> }>) {
  describe(`GET /candles on ${name}`, () => {
    let opened: { db: Database; drop(): Promise<void> };
    let broker: MemoryBroker;
    let api: Api;

    before(async () => {
      opened = await open();
      broker = new MemoryBroker();
      api = makeApi(opened.db, broker, { symbols: ['SOL', 'BTC', 'ETH'] });
      const rows: CandleRow[] = [];
      for (let i = 0; i < 600; i++) {
        rows.push({
          symbol: 'SOL',
          interval: '1m',
          t: T0 + i * MINUTE,
          o: '200.00',
          h: `${201 + (i % 3)}.5`,
          l: '199',
          c: '200.25',
        });
      }
      rows.push({
        symbol: 'BTC',
        interval: '1s',
        t: T0,
        o: '80123.45678901',
        h: '80200',
        l: '80000.1',
        c: '80100.00000001',
      });
      rows.push({ symbol: 'SOL', interval: '1h', t: T0, o: '200', h: '210', l: '190', c: '205' });
      await opened.db.candles.upsert(rows);
    });
    after(async () => {
      await api.close();
      await broker.close();
      await opened.drop();
    });

    const get = (query: string) => api.app.inject({ method: 'GET', url: `/candles?${query}` });

    it('answers the newest candles, newest last, with exact decimal strings and open times in ms', async () => {
      const response = await get('symbol=BTC&interval=1s');
      assert.equal(response.statusCode, 200);
      assert.deepEqual(response.json(), {
        symbol: 'BTC',
        interval: '1s',
        candles: [{ t: T0, o: '80123.45678901', h: '80200', l: '80000.1', c: '80100.00000001' }],
      });
      const page = response.json<CandlesBody>();
      assert.equal(typeof page.candles[0]!.o, 'string');
    });

    it('gives 500 by default, `limit` when asked, and the page before a time with `before`', async () => {
      const minutes = (body: CandlesBody) => body.candles.map((c) => (c.t - T0) / MINUTE);
      const byDefault = (await get('symbol=SOL&interval=1m')).json<CandlesBody>();
      assert.deepEqual(
        minutes(byDefault),
        Array.from({ length: 500 }, (_, i) => 100 + i),
      );
      assert.deepEqual(byDefault.candles.at(-1), { t: T0 + 599 * MINUTE, o: '200', h: '203.5', l: '199', c: '200.25' });

      const newest = (await get('symbol=SOL&interval=1m&limit=3')).json<CandlesBody>();
      assert.deepEqual(minutes(newest), [597, 598, 599]);
      const older = (await get(`symbol=SOL&interval=1m&limit=3&before=${newest.candles[0]!.t}`)).json<CandlesBody>();
      assert.deepEqual(minutes(older), [594, 595, 596]);
      const first = (await get(`symbol=SOL&interval=1m&limit=1000&before=${T0 + 2 * MINUTE}`)).json<CandlesBody>();
      assert.deepEqual(minutes(first), [0, 1]);
      assert.deepEqual((await get('symbol=SOL&interval=1m&before=0')).json<CandlesBody>().candles, []);
      assert.equal(
        (await get(`symbol=SOL&interval=1m&before=${Number.MAX_SAFE_INTEGER}`)).json<CandlesBody>().candles.length,
        500,
      );
      assert.deepEqual(minutes((await get('symbol=SOL&interval=1h')).json<CandlesBody>()), [0]);
    });

    it('answers an empty list for a configured symbol without candles yet', async () => {
      assert.deepEqual((await get('symbol=ETH&interval=1h')).json(), { symbol: 'ETH', interval: '1h', candles: [] });
    });

    const bad: [string, string, RegExp][] = [
      ['symbol=DOGE&interval=1m', 'unknown_symbol', /tradable: SOL, BTC, ETH/],
      ['symbol=sol&interval=1m', 'unknown_symbol', /unknown symbol/],
      ['interval=1m', 'invalid_request', /symbol is required/],
      ['symbol=SOL', 'invalid_request', /interval is required/],
      ['symbol=SOL&interval=5m', 'invalid_request', /interval must be "1s", "1m" or "1h"/],
      ['symbol=SOL&interval=1m&limit=0', 'invalid_request', /limit must be a positive integer/],
      ['symbol=SOL&interval=1m&limit=1001', 'invalid_request', /limit must be at most 1000/],
      ['symbol=SOL&interval=1m&limit=ten', 'invalid_request', /limit/],
      ['symbol=SOL&interval=1m&before=-1', 'invalid_request', /before must be a time in milliseconds/],
      ['symbol=SOL&interval=1m&before=1.5', 'invalid_request', /before/],
      ['symbol=SOL&interval=1m&before=9007199254740992', 'invalid_request', /before must be a safe integer/],
      ['symbol=SOL&interval=1m&before=99999999999999999999', 'invalid_request', /before/],
      ['symbol=SOL&interval=1m&before=', 'invalid_request', /before/],
      ['symbol=SOL&symbol=BTC&interval=1m', 'invalid_request', /symbol/],
      ['symbol=SOL&interval=1m&from=0', 'invalid_request', /unknown field "from"/],
      [`symbol=${'A'.repeat(17)}&interval=1m`, 'invalid_request', /symbol must be at most 16 characters/],
    ];
    for (const [query, code, message] of bad) {
      it(`answers 400 ${code} to ?${query.slice(0, 60)}`, async () => {
        const response = await get(query);
        assert.equal(response.statusCode, 400);
        const body = response.json<ErrorBody>();
        assert.equal(body.error.code, code);
        assert.match(body.error.message, message);
      });
    }

    it('never answers 500, whatever the query', async () => {
      const value = fc.oneof(
        fc.string({ maxLength: 30 }),
        fc.bigInt({ min: -(2n ** 70n), max: 2n ** 70n }).map(String),
        fc.constantFrom('SOL', 'BTC', '1s', '1m', '1h', '500', '0', '1e3', '0x10', ' 5', '5 ', '%00', '[]'),
      );
      await fc.assert(
        fc.asyncProperty(
          fc.dictionary(fc.constantFrom('symbol', 'interval', 'limit', 'before', 'x'), value, { maxKeys: 5 }),
          async (params) => {
            const response = await get(new URLSearchParams(params).toString());
            assert.ok([200, 400].includes(response.statusCode), `${response.statusCode} for ${JSON.stringify(params)}`);
          },
        ),
        { numRuns: 200 },
      );
    });
  });
}

candlesEndpointSuite('PGlite', async () => {
  const db = await openDatabase({ dataDir: 'memory://' });
  return { db, drop: () => db.close() };
});

candlesEndpointSuite('PostgreSQL', async () => {
  const database = await createTestDatabase('tw_api_candles');
  const db = await openDatabase({ url: database.url });
  return {
    db,
    async drop() {
      await db.close();
      await database.drop();
    },
  };
});
