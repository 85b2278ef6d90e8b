import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import Big from 'big.js';
import fc from 'fast-check';
import { createPythSource, PriceSourceError, scaleInteger, SOL_USD_FEED_ID, UnknownSymbolError } from '../src/index.ts';
import { parseRetryAfter } from '../src/hermes-client.ts';
import { freePort } from '@repo/test-support';
import { capturingLogger, cryptoFeed, FakeHermes, hermesBody } from './fake-hermes.ts';

const BTC_FEED = '0xe62df6c8b4a85fe1a67db44dc12de5db330f7ac66b72dc658afedf0f4a415b43';
const ETH_FEED = '0xff61491a931112ddf1bd8147cd1b641375f79f5825126d665480874634fd0ace';
const BIG_FEED = '0x' + 'ab'.repeat(32);
const WBTC_FEED = '0x' + 'cd'.repeat(32);
const UNKNOWN_FEED = '0x' + '12'.repeat(32);
const NOW_S = 1_790_000_000;
const nowMs = () => NOW_S * 1000;

describe('scaleInteger: price × 10^expo, exactly', () => {
  const cases: [string, number, string][] = [
    ['23145000000', -8, '231.45'], // the design's SOL example
    ['15000000000', -8, '150'],
    ['5', -3, '0.005'],
    ['1', -18, '0.000000000000000001'],
    ['123', 0, '123'],
    ['15', 3, '15000'],
    ['0', -8, '0'],
    ['0', 5, '0'],
    ['000123', -1, '12.3'],
    ['-2500', -2, '-25'],
    ['9223372036854775807', -8, '92233720368.54775807'], // i64 max: beyond float precision
    ['9223372036854775807', 12, '9223372036854775807000000000000'],
    ['123456789012345678901234567890', -10, '12345678901234567890.123456789'],
  ];
  for (const [integer, expo, expected] of cases) {
    it(`${integer} × 10^${expo} = ${expected}`, () => {
      assert.equal(scaleInteger(integer, expo), expected);
    });
  }

  it('agrees with big.js on any integer and exponent, and never uses exponent notation', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: -(10n ** 30n), max: 10n ** 30n }), fc.integer({ min: -30, max: 30 }), (n, expo) => {
        const result = scaleInteger(n.toString(), expo);
        assert.match(result, /^-?(0|[1-9]\d*)(\.\d*[1-9])?$/);
        // Only multiplications by non-negative powers of ten, which big.js does exactly.
        const integer = new Big(n.toString());
        if (expo >= 0) assert.ok(integer.times(new Big(10).pow(expo)).eq(new Big(result)));
        else assert.ok(new Big(result).times(new Big(10).pow(-expo)).eq(integer));
      }),
    );
  });

  it('refuses non-integer input and absurd exponents', () => {
    for (const bad of ['231.45', '1e5', '', ' 1', '+1', '0x10', '1'.repeat(41)]) {
      assert.throws(() => scaleInteger(bad, -8), RangeError, bad);
    }
    assert.throws(() => scaleInteger('1', 0.5), RangeError);
    assert.throws(() => scaleInteger('1', -41), RangeError);
    assert.throws(() => scaleInteger('1', Number.NaN), RangeError);
  });
});

describe('parseRetryAfter', () => {
  it('reads seconds and HTTP dates, caps them, and ignores garbage', () => {
    assert.equal(parseRetryAfter('7', 0), 7000);
    assert.equal(parseRetryAfter(new Date(nowMs() + 30_000).toUTCString(), nowMs()), 30_000);
    assert.equal(parseRetryAfter('999999', 0), 600_000);
    assert.equal(parseRetryAfter('soon', 0), undefined);
    assert.equal(parseRetryAfter(null, 0), undefined);
  });
});

describe('Pyth source against a Hermes-shaped server', () => {
  let hermes: FakeHermes;
  before(async () => {
    hermes = await FakeHermes.start();
  });
  after(async () => {
    await hermes.close();
  });
  beforeEach(() => {
    hermes.reset();
  });

  const sol = (price = '23145000000', expo = -8, publishTime = NOW_S - 1, conf = '1234567') => ({
    id: SOL_USD_FEED_ID,
    price,
    expo,
    publishTime,
    conf,
  });

  it('asks /v2/updates/price/latest for the SOL feed and converts the price exactly', async () => {
    hermes.next = () => ({ body: hermesBody([sol()]) });
    const source = createPythSource({ url: hermes.url, now: nowMs });
    const quotes = await source.read(['SOL']);
    assert.deepEqual(quotes, [
      { symbol: 'SOL', price: '231.45', publishTime: new Date((NOW_S - 1) * 1000).toISOString() },
    ]);

    const [req] = hermes.requests;
    assert.equal(req?.method, 'GET');
    assert.equal(req?.path, '/v2/updates/price/latest');
    assert.deepEqual(req?.query.getAll('ids[]'), [SOL_USD_FEED_ID]);
    assert.equal(req?.query.get('parsed'), 'true');
    assert.equal(req?.query.get('ignore_invalid_price_ids'), 'true', 'one unknown id must not fail the others');
    assert.equal(req?.authorization, undefined, 'no key, no Authorization header');
  });

  it('sends the API key as a Bearer token', async () => {
    hermes.next = () => ({ body: hermesBody([sol()]) });
    const source = createPythSource({ url: hermes.url, apiKey: 'k-123', now: nowMs });
    await source.read(['SOL']);
    assert.equal(hermes.requests[0]?.authorization, 'Bearer k-123');
  });

  it('keeps a path prefix of the configured URL', async () => {
    hermes.next = () => ({ body: hermesBody([sol()]) });
    const source = createPythSource({ url: `${hermes.url}/hermes`, now: nowMs });
    await source.read(['SOL']);
    assert.equal(hermes.requests[0]?.path, '/hermes/v2/updates/price/latest');
  });

  it('reads several feeds with different exponents in one request, ids with or without 0x', async () => {
    hermes.next = () => {
      const body = hermesBody([
        { id: BTC_FEED, price: '6395282000000', expo: -8, publishTime: NOW_S },
        { id: BIG_FEED, price: '9223372036854775807', expo: 3, publishTime: NOW_S },
        sol('15', -12, NOW_S - 1, '0'),
      ]) as { parsed: { id: string }[] };
      body.parsed[1]!.id = BIG_FEED.toUpperCase().replace('0X', '0x'); // some providers keep the prefix
      return { body };
    };
    const source = createPythSource({
      url: hermes.url,
      feedIds: { SOL: SOL_USD_FEED_ID, BTC: BTC_FEED, BIG: BIG_FEED },
      now: nowMs,
    });
    const quotes = await source.read(['SOL', 'BTC', 'BIG']);
    assert.equal(hermes.requests.length, 1);
    assert.equal(hermes.requests[0]?.query.getAll('ids[]').length, 3);
    assert.deepEqual(Object.fromEntries(quotes.map((q) => [q.symbol, q.price])), {
      BTC: '63952.82',
      BIG: '9223372036854775807000',
      SOL: '0.000000000015',
    });
  });

  it('401: rejects with source_unauthorized and a hint about the key', async () => {
    hermes.next = () => ({ status: 401, body: { message: 'unauthorized' } });
    const source = createPythSource({ url: hermes.url, now: nowMs });
    await assert.rejects(source.read(['SOL']), (err: PriceSourceError) => {
      assert.equal(err.code, 'source_unauthorized');
      assert.equal(err.status, 401);
      assert.match(err.message, /PYTH_API_KEY/);
      return true;
    });
  });

  it('the API key never appears in an error', async () => {
    hermes.next = () => ({ status: 403 });
    const source = createPythSource({ url: hermes.url, apiKey: 'secret-key-42', now: nowMs });
    await assert.rejects(source.read(['SOL']), (err: Error) => !err.message.includes('secret-key-42'));
  });

  it('429: honours Retry-After and does not ask again before it has passed', async () => {
    let clock = nowMs();
    hermes.next = () => ({ status: 429, headers: { 'retry-after': '7' } });
    const source = createPythSource({ url: hermes.url, now: () => clock });
    await assert.rejects(source.read(['SOL']), { code: 'source_rate_limited', retryAfterMs: 7000 });
    assert.equal(hermes.requests.length, 1);

    clock += 3000;
    await assert.rejects(source.read(['SOL']), { code: 'source_rate_limited', retryAfterMs: 4000 });
    assert.equal(hermes.requests.length, 1, 'no request inside the Retry-After window');

    clock += 4000;
    hermes.next = () => ({ body: hermesBody([sol('23200000000', -8, clock / 1000)]) });
    assert.deepEqual(
      (await source.read(['SOL'])).map((q) => q.price),
      ['232'],
    );
    assert.equal(hermes.requests.length, 2);
  });

  it('429 without Retry-After waits Hermes’ 60 s block', async () => {
    hermes.next = () => ({ status: 429 });
    const source = createPythSource({ url: hermes.url, now: nowMs });
    await assert.rejects(source.read(['SOL']), { code: 'source_rate_limited', retryAfterMs: 60_000 });
  });

  it('5xx: rejects with source_http_error and the status', async () => {
    hermes.next = () => ({ status: 503, body: 'upstream down' });
    const source = createPythSource({ url: hermes.url, now: nowMs });
    await assert.rejects(source.read(['SOL']), { code: 'source_http_error', status: 503 });
  });

  it('malformed JSON, or JSON without "parsed": source_bad_response', async () => {
    const source = createPythSource({ url: hermes.url, now: nowMs });
    hermes.next = () => ({ body: '{"parsed": [' });
    await assert.rejects(source.read(['SOL']), { code: 'source_bad_response' });
    hermes.next = () => ({ body: { binary: {} } });
    await assert.rejects(source.read(['SOL']), { code: 'source_bad_response' });
    hermes.next = () => ({ body: 'null' });
    await assert.rejects(source.read(['SOL']), { code: 'source_bad_response' });
  });

  it('refuses a body over maxResponseBytes', async () => {
    hermes.next = () => ({ body: hermesBody(Array.from({ length: 50 }, () => sol())) });
    const source = createPythSource({ url: hermes.url, maxResponseBytes: 2000, now: nowMs });
    await assert.rejects(source.read(['SOL']), (err: PriceSourceError) => {
      assert.equal(err.code, 'source_bad_response');
      assert.match(err.message, /larger than 2000 bytes/);
      return true;
    });
  });

  it('a server that never answers: source_timeout after timeoutMs', async () => {
    hermes.next = () => ({ hang: true });
    const source = createPythSource({ url: hermes.url, timeoutMs: 150, now: nowMs });
    const started = Date.now();
    await assert.rejects(source.read(['SOL']), { code: 'source_timeout' });
    // Not the default 5 s timeout: timeoutMs applies.
    assert.ok(Date.now() - started < 4000);
  });

  it('nothing listening: source_unreachable', async () => {
    const source = createPythSource({ url: `http://127.0.0.1:${await freePort()}`, now: nowMs });
    await assert.rejects(source.read(['SOL']), { code: 'source_unreachable' });
  });

  it('an aborted read and a closed source reject with source_aborted', async () => {
    hermes.next = () => ({ hang: true });
    const source = createPythSource({ url: hermes.url, now: nowMs });
    const controller = new AbortController();
    const reading = source.read(['SOL'], { signal: controller.signal });
    controller.abort();
    await assert.rejects(reading, { code: 'source_aborted' });

    const closing = source.read(['SOL']);
    source.close();
    await assert.rejects(closing, { code: 'source_aborted' });
    await assert.rejects(source.read(['SOL']), { code: 'source_aborted' });
  });

  it('a missing feed, stale data or a non-integer price are skipped with one warning each', async () => {
    const { logger, lines } = capturingLogger();
    const source = createPythSource({
      url: hermes.url,
      feedIds: { SOL: SOL_USD_FEED_ID, BTC: BTC_FEED, BIG: BIG_FEED },
      maxStalenessMs: 60_000,
      now: nowMs,
      logger,
    });
    hermes.next = () => ({
      body: hermesBody([
        sol('23145000000', -8, NOW_S - 61), // 61 s old
        { id: BTC_FEED, price: '63952.82', expo: -8, publishTime: NOW_S }, // not an integer
        // BIG missing from the answer
      ]),
    });
    assert.deepEqual(await source.read(['SOL', 'BTC', 'BIG', 'ETH']), []);
    const warned = () =>
      lines.filter((l) => l.level === 'warn').map((l) => `${String(l.data.symbol)}:${String(l.data.reason)}`);
    assert.deepEqual(warned().sort(), [
      'BIG:feed_missing',
      'BTC:invalid_price',
      'ETH:feed_not_configured',
      'SOL:stale',
    ]);

    // The same problems again are not warned about again (no log flood at one tick a second).
    await source.read(['SOL', 'BTC', 'BIG', 'ETH']);
    assert.equal(warned().length, 4);

    // Recovery is reported once.
    hermes.next = () => ({ body: hermesBody([sol('23145000000', -8, NOW_S)]) });
    assert.deepEqual(
      (await source.read(['SOL'])).map((q) => q.price),
      ['231.45'],
    );
    assert.ok(lines.some((l) => l.level === 'info' && l.data.symbol === 'SOL' && l.data.previous === 'stale'));
  });

  it('a publish time ahead of the clock past maxFutureMs, or past any date, is skipped; within it, taken', async () => {
    // Taken, an update from the future would outrank every real one after it and freeze the price.
    const { logger, lines } = capturingLogger();
    const source = createPythSource({
      url: hermes.url,
      feedIds: { SOL: SOL_USD_FEED_ID, BTC: BTC_FEED, BIG: BIG_FEED },
      maxFutureMs: 10_000,
      now: nowMs,
      logger,
    });
    hermes.next = () => ({
      body: hermesBody([
        sol('23145000000', -8, NOW_S + 3600), // an hour ahead
        { id: BTC_FEED, price: '6395282000000', expo: -8, publishTime: 9_000_000_000_000_000 }, // no Date holds it
        { id: BIG_FEED, price: '100', expo: 0, publishTime: NOW_S + 5, conf: '0' }, // clock skew
      ]),
    });
    assert.deepEqual(
      (await source.read(['SOL', 'BTC', 'BIG'])).map((q) => [q.symbol, q.price]),
      [['BIG', '100']],
    );
    const warned = lines
      .filter((l) => l.level === 'warn')
      .map((l) => `${String(l.data.symbol)}:${String(l.data.reason)}`);
    assert.deepEqual(warned.sort(), ['BTC:invalid_price', 'SOL:future']);
  });

  it('zero and negative prices are not prices', async () => {
    const source = createPythSource({ url: hermes.url, feedIds: { SOL: SOL_USD_FEED_ID, BTC: BTC_FEED }, now: nowMs });
    hermes.next = () => ({
      body: hermesBody([sol('0', -8, NOW_S), { id: BTC_FEED, price: '-100', expo: -2, publishTime: NOW_S }]),
    });
    assert.deepEqual(await source.read(['SOL', 'BTC']), []);
  });

  it('refuses bad options at creation, naming them', () => {
    assert.throws(() => createPythSource({ url: 'ftp://x' }), /url must be an http\(s\) URL/);
    assert.throws(() => createPythSource({ feedIds: { SOL: '0x1234' } }), /feed id of SOL/);
    assert.throws(() => createPythSource({ timeoutMs: 0 }), /timeoutMs/);
    assert.throws(() => createPythSource({ maxConfRatio: '1e-2' }), /maxConfRatio/);
    assert.throws(() => createPythSource({ maxConfRatio: '0' }), /maxConfRatio/);
    assert.throws(() => createPythSource({ stream: { renewAfterMs: -1 } }), /renewAfterMs/);
  });
});

describe('Pyth source: what real Hermes answers', () => {
  let hermes: FakeHermes;
  before(async () => {
    hermes = await FakeHermes.start();
  });
  after(async () => {
    await hermes.close();
  });
  beforeEach(() => {
    hermes.reset();
    hermes.publish(
      { id: SOL_USD_FEED_ID, price: '23145000000', expo: -8, publishTime: NOW_S },
      { id: BTC_FEED, price: '6395282000000', expo: -8, publishTime: NOW_S },
      { id: ETH_FEED, price: '301250000000', expo: -8, publishTime: NOW_S },
    );
    hermes.metadata.push(
      cryptoFeed('Crypto.WBTC/USD', WBTC_FEED),
      cryptoFeed('Crypto.BTC/EUR', BIG_FEED),
      cryptoFeed('Crypto.BTC/USD', BTC_FEED),
      cryptoFeed('Crypto.ETH/USD', ETH_FEED),
      cryptoFeed('Crypto.SOL/USD', SOL_USD_FEED_ID),
    );
  });

  it('the double: an unknown id is a plain-text 404 for all the request unless ignore_invalid_price_ids', async () => {
    const ids = `ids[]=${SOL_USD_FEED_ID}&ids[]=${UNKNOWN_FEED}`;
    const strict = await fetch(`${hermes.url}/v2/updates/price/latest?${ids}`);
    assert.equal(strict.status, 404);
    assert.match(strict.headers.get('content-type') ?? '', /^text\/plain/);
    assert.equal(await strict.text(), `Price ids not found: ${UNKNOWN_FEED.slice(2)}`);
    const lenient = await fetch(`${hermes.url}/v2/updates/price/latest?${ids}&ignore_invalid_price_ids=true`);
    assert.equal(lenient.status, 200);
    assert.deepEqual(
      ((await lenient.json()) as { parsed: { id: string }[] }).parsed.map((p) => p.id),
      [SOL_USD_FEED_ID.slice(2)],
    );
  });

  it('an unknown feed id does not stop the others: left out with one warning', async () => {
    const { logger, lines } = capturingLogger();
    const source = createPythSource({ url: hermes.url, feedIds: { BTC: UNKNOWN_FEED }, now: nowMs, logger });
    const quotes = await source.read(['SOL', 'BTC']);
    assert.deepEqual(
      quotes.map((q) => q.symbol),
      ['SOL'],
    );
    assert.ok(lines.some((l) => l.level === 'warn' && l.data.symbol === 'BTC' && l.data.reason === 'feed_missing'));
  });

  it('a Hermes that answers 404 anyway: the named feed is dropped and the request repeated without it', async () => {
    const { logger, lines } = capturingLogger();
    hermes.next = (req) =>
      req.query.getAll('ids[]').includes(UNKNOWN_FEED)
        ? { status: 404, body: `Price ids not found: ${UNKNOWN_FEED.slice(2)}` }
        : undefined;
    const source = createPythSource({ url: hermes.url, feedIds: { BTC: UNKNOWN_FEED }, now: nowMs, logger });
    assert.deepEqual(
      (await source.read(['SOL', 'BTC'])).map((q) => q.symbol),
      ['SOL'],
    );
    assert.equal(hermes.requests.length, 2);
    assert.deepEqual(source.stats().dropped, { BTC: 'unknown' });
    await source.read(['SOL', 'BTC']);
    assert.equal(hermes.requests.length, 3, 'the dropped feed is not asked for again');
    assert.equal(lines.filter((l) => l.level === 'warn' && /does not know this feed/.test(l.msg)).length, 1);
  });

  it('403 "Not entitled: feed …": that feed is dropped with one warning, the others are priced', async () => {
    const { logger, lines } = capturingLogger();
    hermes.notEntitled.add(BTC_FEED.slice(2));
    const source = createPythSource({ url: hermes.url, feedIds: { BTC: BTC_FEED, ETH: ETH_FEED }, now: nowMs, logger });
    assert.deepEqual(
      (await source.read(['SOL', 'BTC', 'ETH'])).map((q) => `${q.symbol}=${q.price}`),
      ['SOL=231.45', 'ETH=3012.5'],
    );
    await source.read(['SOL', 'BTC', 'ETH']);
    assert.deepEqual(
      hermes.requests.map((r) => r.query.getAll('ids[]').length),
      [3, 2, 2],
    );
    const warnings = lines.filter((l) => l.level === 'warn' && /not entitled/.test(l.msg));
    assert.equal(warnings.length, 1);
    assert.deepEqual(warnings[0]!.data.symbols, ['BTC']);
  });

  it('a 403 that names no feed is the key refused: source_unauthorized, the body logged', async () => {
    const { logger, lines } = capturingLogger();
    hermes.next = () => ({ status: 403, body: 'Forbidden: key k-999 suspended' });
    const source = createPythSource({ url: hermes.url, apiKey: 'k-999', now: nowMs, logger });
    await assert.rejects(source.read(['SOL']), { code: 'source_unauthorized', status: 403 });
    assert.equal(lines.find((l) => l.data.status === 403)?.data.body, 'Forbidden: key [redacted] suspended');
  });

  it('a long error body is logged truncated', async () => {
    const { logger, lines } = capturingLogger();
    hermes.next = () => ({ status: 502, body: 'x'.repeat(10_000) });
    const source = createPythSource({ url: hermes.url, now: nowMs, logger });
    await assert.rejects(source.read(['SOL']), { code: 'source_http_error', status: 502 });
    const body = String(lines.find((l) => l.data.status === 502)?.data.body);
    assert.ok(body.length < 400, `logged ${body.length} characters`);
  });

  it('confidence is judged exactly on integers: conf / price at the limit passes, one unit over not', async () => {
    const { logger, lines } = capturingLogger();
    let clock = nowMs();
    // i64-sized integers: conf and conf + 1 are the same binary float, so only exact arithmetic tells them apart.
    const price = '9223372036854775800';
    const atLimit = '92233720368547758'; // exactly 1 %
    const overLimit = '92233720368547759';
    // Odd requests answer a confidence at the limit, even ones one unit over.
    hermes.next = () => ({
      body: hermesBody([
        {
          id: SOL_USD_FEED_ID,
          price,
          expo: -8,
          publishTime: Math.floor(clock / 1000),
          conf: hermes.requests.length % 2 === 1 ? atLimit : overLimit,
        },
      ]),
    });
    const source = createPythSource({ url: hermes.url, maxConfRatio: '0.01', now: () => clock, logger });
    assert.deepEqual(
      (await source.read(['SOL'])).map((q) => q.price),
      ['92233720368.547758'],
    );
    assert.deepEqual(await source.read(['SOL']), [], 'one unit over the limit');
    clock += 1000;
    await source.read(['SOL']);
    assert.deepEqual(await source.read(['SOL']), []);
    assert.deepEqual(source.stats().lowConfidence, { SOL: 2 });
    const warnings = () => lines.filter((l) => l.level === 'warn' && /too uncertain/.test(l.msg));
    assert.equal(warnings().length, 1, 'once a minute per feed');
    clock += 60_000;
    await source.read(['SOL']);
    assert.deepEqual(await source.read(['SOL']), []);
    assert.equal(warnings().length, 2);
    assert.equal(warnings()[1]!.data.skippedSinceLastReport, 2);
  });

  it('feed ids: SOL built in, the others looked up once as Crypto.<SYMBOL>/USD and kept', async () => {
    const { logger } = capturingLogger();
    const source = createPythSource({ url: hermes.url, apiKey: 'k', now: nowMs, logger });
    assert.deepEqual(await source.resolveFeeds(['SOL', 'BTC', 'ETH']), {
      SOL: SOL_USD_FEED_ID,
      BTC: BTC_FEED,
      ETH: ETH_FEED,
    });
    const lookups = hermes.requestsTo('/v2/price_feeds');
    assert.deepEqual(
      lookups.map((r) => [r.query.get('query'), r.query.get('asset_type'), r.authorization]),
      [
        ['BTC', 'crypto', 'Bearer k'],
        ['ETH', 'crypto', 'Bearer k'],
      ],
      'Crypto.WBTC/USD and Crypto.BTC/EUR also match "BTC"; the exact symbol wins',
    );
    await source.resolveFeeds(['SOL', 'BTC', 'ETH']);
    assert.equal(hermes.requestsTo('/v2/price_feeds').length, 2, 'cached');
    assert.deepEqual(
      (await source.read(['SOL', 'BTC', 'ETH'])).map((q) => q.symbol),
      ['SOL', 'BTC', 'ETH'],
    );
  });

  it('feed ids given in the configuration are used without a lookup', async () => {
    const source = createPythSource({ url: hermes.url, feedIds: { BTC: BTC_FEED, ETH: ETH_FEED }, now: nowMs });
    await source.resolveFeeds(['SOL', 'BTC', 'ETH']);
    assert.equal(hermes.requestsTo('/v2/price_feeds').length, 0);
  });

  it('an unknown symbol is refused with a message naming it and what Hermes has instead', async () => {
    const source = createPythSource({ url: hermes.url, now: nowMs });
    await assert.rejects(source.resolveFeeds(['SOL', 'BT', 'NOPE']), (err: Error) => {
      assert.ok(err instanceof UnknownSymbolError);
      assert.deepEqual(err.symbols, ['BT', 'NOPE']);
      assert.match(err.message, /no Pyth price feed for BT, NOPE/);
      assert.match(err.message, /Crypto\.WBTC\/USD/, 'near misses help fix the symbol');
      assert.match(err.message, /PYTH_FEED_IDS/);
      return true;
    });
  });

  it('a lookup that cannot reach Hermes is retried, then fails naming the symbol', async () => {
    hermes.next = () => ({ status: 503, body: 'busy' });
    const source = createPythSource({ url: hermes.url, now: nowMs });
    await assert.rejects(source.resolveFeeds(['BTC'], { attempts: 2 }), /could not look up the Pyth feed of BTC.*503/);
    assert.equal(hermes.requestsTo('/v2/price_feeds').length, 2);
    hermes.next = () => ({ status: 401, body: 'Unauthorized' });
    await assert.rejects(source.resolveFeeds(['BTC'], { attempts: 3 }), /PYTH_API_KEY/);
    assert.equal(hermes.requestsTo('/v2/price_feeds').length, 3, 'a refused key is not retried');
  });
});
