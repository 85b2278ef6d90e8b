import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import { createEventPublisher, createPriceStore, EVENT_CHANNELS, MemoryBroker } from '@repo/broker';
import { decodeEvent, type PriceUpdateEvent } from '@repo/events';
import { nextValue, waitFor } from '@repo/test-support';
import { createPriceWorker, createPythSource, SOL_USD_FEED_ID, type PythSourceOptions } from '../src/index.ts';
import { capturingLogger, FakeHermes, type FeedFixture, type LogLine } from './fake-hermes.ts';

const BTC_FEED = '0xe62df6c8b4a85fe1a67db44dc12de5db330f7ac66b72dc658afedf0f4a415b43';
const ETH_FEED = '0xff61491a931112ddf1bd8147cd1b641375f79f5825126d665480874634fd0ace';
const STREAM = '/v2/updates/price/stream';
const LATEST = '/v2/updates/price/latest';

/** Updates published "now", so that the 60 s staleness rule keeps them. */
const nowS = () => Math.floor(Date.now() / 1000);
const sol = (price: string, publishTime: number, conf?: string): FeedFixture => ({
  id: SOL_USD_FEED_ID,
  price,
  expo: -8,
  publishTime,
  ...(conf ? { conf } : {}),
});
const btc = (price: string, publishTime: number): FeedFixture => ({ id: BTC_FEED, price, expo: -8, publishTime });
const eth = (price: string, publishTime: number): FeedFixture => ({ id: ETH_FEED, price, expo: -8, publishTime });

let workers = 0;

/**
 * The worker of `npm start` with PRICE_SOURCE=pyth, against the double, on the in-process broker.
 * Each worker has its own API key, retired when it stops: a request it had in flight then cannot
 * reach the next test.
 */
async function pythWorker(
  hermes: FakeHermes,
  options: { intervalMs?: number; source?: PythSourceOptions; symbols?: string[] } = {},
) {
  const broker = new MemoryBroker();
  const { logger, lines } = capturingLogger();
  const apiKey = options.source?.apiKey ?? `test-key-${++workers}`;
  const source = createPythSource({
    url: hermes.url,
    apiKey,
    feedIds: { BTC: BTC_FEED, ETH: ETH_FEED },
    logger,
    ...options.source,
    stream: { reconnectBaseDelayMs: 5, reconnectMaxDelayMs: 40, ...options.source?.stream },
  });
  const worker = createPriceWorker({
    source,
    stream: source.stream,
    prices: createPriceStore(broker),
    publisher: createEventPublisher(broker),
    symbols: options.symbols ?? ['SOL', 'BTC', 'ETH'],
    intervalMs: options.intervalMs ?? 20,
    logger,
  });
  const events: PriceUpdateEvent[] = [];
  const waiters = new Set<(e: PriceUpdateEvent) => void>();
  await broker.subscribe(EVENT_CHANNELS.price, (raw) => {
    const decoded = decodeEvent('price', raw);
    assert.ok(decoded.ok);
    events.push(decoded.event);
    for (const waiter of waiters) waiter(decoded.event);
  });
  /** The next published event that satisfies `match`. */
  const published = (match: (e: PriceUpdateEvent) => boolean, what = 'a price event') =>
    nextValue<PriceUpdateEvent>(
      (cb) => {
        const waiter = (e: PriceUpdateEvent) => match(e) && cb(e);
        waiters.add(waiter);
        return () => waiters.delete(waiter);
      },
      { what },
    );
  /** Starts the worker and resolves with its stream connection once the worker is on it. */
  const startStreaming = async () => {
    const connecting = hermes.nextStream();
    worker.start();
    const stream = await connecting;
    await waitFor(() => worker.stats().transport === 'stream', { what: 'the worker on the stream' });
    return stream;
  };
  const stop = async () => {
    await worker.stop();
    source.close();
    hermes.retire(apiKey);
    await broker.close();
  };
  return { apiKey, broker, source, worker, lines, events, published, startStreaming, stop };
}

const warned = (lines: LogLine[], pattern: RegExp) => lines.filter((l) => l.level === 'warn' && pattern.test(l.msg));

describe('the price worker on the Pyth SSE stream, against a Hermes-shaped server', () => {
  let hermes: FakeHermes;
  before(async () => {
    hermes = await FakeHermes.start();
  });
  after(async () => {
    await hermes.close();
  });
  beforeEach(() => {
    hermes.reset();
    const t = nowS();
    hermes.publish(sol('15000000000', t), btc('6395282000000', t), eth('300000000000', t));
  });

  it('streams every symbol over one connection and publishes each update exactly as it comes', async () => {
    const w = await pythWorker(hermes);
    try {
      const stream = await w.startStreaming();
      assert.equal(hermes.requestsTo(STREAM).length, 1, 'one connection for every symbol');
      assert.deepEqual(stream.request.query.getAll('ids[]').sort(), [SOL_USD_FEED_ID, BTC_FEED, ETH_FEED].sort());
      assert.equal(stream.request.query.get('parsed'), 'true');
      assert.equal(stream.request.query.get('ignore_invalid_price_ids'), 'true');
      assert.equal(stream.request.authorization, `Bearer ${w.apiKey}`);

      const t = nowS() + 1;
      const arriving = Promise.all([
        w.published((e) => e.symbol === 'SOL' && e.price === '231.45'),
        w.published((e) => e.symbol === 'BTC' && e.price === '63952.82153102'),
        w.published((e) => e.symbol === 'ETH' && e.price === '3012.5'),
      ]);
      hermes.publish(sol('23145000000', t), btc('6395282153102', t), eth('301250000000', t));
      const [solEvent] = await arriving;
      assert.equal(solEvent.timestamp, new Date(t * 1000).toISOString(), 'the event carries the publish time');
      assert.deepEqual(await createPriceStore(w.broker).getPrice('BTC'), {
        symbol: 'BTC',
        price: '63952.82153102',
        timestamp: new Date(t * 1000).toISOString(),
      });
    } finally {
      await w.stop();
    }
    await waitFor(() => hermes.openStreams().length === 0, { what: 'stop() to close the stream' });
  });

  it('a price never steps back in time: older updates are dropped, the same one is not published twice', async () => {
    const w = await pythWorker(hermes, { symbols: ['SOL'] });
    try {
      const stream = await w.startStreaming();
      const t = nowS() + 5;
      const solEvents = () => w.events.filter((e) => e.symbol === 'SOL' && Date.parse(e.timestamp) >= t * 1000);

      let arriving = w.published((e) => e.price === '231');
      stream.send([sol('23100000000', t)]);
      await arriving;

      stream.send([sol('22900000000', t - 1)]); // out of order
      await waitFor(() => w.worker.stats().droppedOlder === 1, { what: 'the older update dropped' });
      stream.send([sol('23100000000', t)]); // a duplicate
      await waitFor(() => w.worker.stats().droppedRepeated === 1, { what: 'the duplicate dropped' });

      arriving = w.published((e) => e.price === '231.5');
      stream.send([sol('23150000000', t)]); // the same second, another price: a new update
      await arriving;
      arriving = w.published((e) => e.price === '232');
      stream.send([sol('23200000000', t + 1)]);
      await arriving;

      assert.deepEqual(
        solEvents().map((e) => e.price),
        ['231', '231.5', '232'],
      );
      // A poll that answers an older update than the stream's is dropped too.
      hermes.feeds.set(SOL_USD_FEED_ID.slice(2), sol('1000000000', t - 3));
      const polled = await w.worker.tick();
      assert.equal(polled.ok, true);
      assert.deepEqual(polled.published, []);
      assert.equal(w.worker.stats().droppedOlder, 2);
      assert.equal((await createPriceStore(w.broker).getPrice('SOL'))?.price, '232', 'the store never went back');
    } finally {
      await w.stop();
    }
  });

  it('falls back to polling /latest while the stream cannot connect, and stops polling once it is up', async () => {
    hermes.failStreams = { count: 3, status: 503 };
    const w = await pythWorker(hermes, { symbols: ['SOL'] });
    try {
      const polledPrice = w.published((e) => e.price === '150');
      const connecting = hermes.nextStream();
      w.worker.start();
      await polledPrice;
      assert.ok(hermes.requestsTo(LATEST).length >= 1, 'the price came from polling');
      const stream = await connecting;
      assert.ok(
        w.lines.some((l) => l.level === 'warn' && l.data.status === 503),
        'the 503 is logged',
      );
      assert.equal(hermes.requestsTo(STREAM).length, 4, 'three refused connections, then the stream');
      await waitFor(() => w.worker.stats().transport === 'stream', { what: 'the worker back on the stream' });
      const pollsWhenUp = hermes.requestsTo(LATEST).length;
      for (let i = 1; i <= 5; i++) {
        const arriving = w.published((e) => e.price === `15${i}`);
        stream.send([sol(`15${i}00000000`, nowS() + i)]);
        await arriving;
      }
      assert.ok(
        hermes.requestsTo(LATEST).length <= pollsWhenUp + 1,
        'no polling while the stream is up (at most the poll already under way)',
      );
    } finally {
      await w.stop();
    }
  });

  it('reconnects when Hermes ends the stream (24 h) or the connection breaks, polling in between', async () => {
    const w = await pythWorker(hermes, { symbols: ['SOL'] });
    try {
      const first = await w.startStreaming();
      let connecting = hermes.nextStream();
      first.end(); // `event: error` "Connection timeout reached (24h)", then the end of the body
      const second = await connecting;
      const ended = warned(w.lines, /stream ended/);
      assert.equal(ended.length, 1);
      assert.match(String(ended[0]!.data.reason), /Connection timeout reached \(24h\)/);

      connecting = hermes.nextStream();
      second.destroy();
      const third = await connecting;
      await waitFor(() => w.worker.stats().transport === 'stream');
      const arriving = w.published((e) => e.price === '160');
      third.send([sol('16000000000', nowS() + 1)]);
      await arriving;
      assert.equal(w.source.stats().stream.connects, 3);
      assert.equal(w.source.stats().stream.renewals, 0);
    } finally {
      await w.stop();
    }
  });

  it('renews the stream before the 24 h limit: the new connection opens before the old one closes', async () => {
    const w = await pythWorker(hermes, { symbols: ['SOL'], source: { stream: { renewAfterMs: 300 } } });
    try {
      const first = await w.startStreaming();
      const second = await hermes.nextStream();
      assert.equal(first.isClosed, false, 'the old connection is still open when the new one is asked for');
      await first.closed; // closed by the worker, once the new one answered
      assert.equal(second.isClosed, false);
      assert.equal(w.worker.stats().transport, 'stream');
      assert.equal(
        w.lines.filter((l) => /stream (down|ended)/.test(l.msg)).length,
        0,
        'the worker never saw the stream down',
      );
      assert.ok(w.source.stats().stream.renewals >= 1);

      const arriving = w.published((e) => e.price === '170');
      second.send([sol('17000000000', nowS() + 1)]);
      await arriving;
    } finally {
      await w.stop();
    }
  });

  it('a stream that falls silent (no data, no keep-alive) is replaced', async () => {
    // 600 ms against keep-alives every 50 ms: a stall of this loaded machine is no silence.
    const w = await pythWorker(hermes, { symbols: ['SOL'], source: { stream: { idleTimeoutMs: 600 } } });
    try {
      let connecting = hermes.nextStream();
      w.worker.start();
      const first = await connecting;
      connecting = hermes.nextStream();
      const second = await connecting;
      await first.closed;
      assert.match(String(warned(w.lines, /stream ended/)[0]?.data.reason), /nothing received for 600 ms/);
      // Keep-alive comments keep a quiet connection alive.
      const keepAlive = setInterval(() => second.write(':\n\n'), 50);
      try {
        const arriving = w.published((e) => e.price === '180');
        setTimeout(() => second.send([sol('18000000000', nowS() + 1)]), 1000);
        await arriving;
        assert.equal(second.isClosed, false);
      } finally {
        clearInterval(keepAlive);
      }
    } finally {
      await w.stop();
    }
  });

  it('403 "Not entitled": the feed is dropped with one warning, stream and polls go on with the others', async () => {
    hermes.notEntitled.add(BTC_FEED.slice(2));
    const w = await pythWorker(hermes);
    try {
      const connecting = hermes.nextStream();
      const first = await w.worker.tick();
      assert.equal(first.ok, true);
      assert.deepEqual(first.published.map((e) => e.symbol).sort(), ['ETH', 'SOL']);
      w.worker.start();
      const stream = await connecting;
      assert.deepEqual(stream.request.query.getAll('ids[]').sort(), [SOL_USD_FEED_ID, ETH_FEED].sort());
      const drops = warned(w.lines, /not entitled/);
      assert.equal(drops.length, 1, 'one clear warning');
      assert.deepEqual(drops[0]!.data.symbols, ['BTC']);
      assert.deepEqual(w.source.stats().dropped, { BTC: 'not_entitled' });
      const body = w.lines.find((l) => l.data.status === 403)?.data.body;
      assert.equal(body, `Not entitled: feed ${BTC_FEED}`, 'the answer body is logged');

      const arriving = w.published((e) => e.symbol === 'ETH' && e.price === '3100');
      hermes.publish(eth('310000000000', nowS() + 1), btc('1', nowS() + 1));
      await arriving;
      assert.equal(
        w.events.some((e) => e.symbol === 'BTC'),
        false,
      );
    } finally {
      await w.stop();
    }
  });

  it('429 on the stream: no request at all before Retry-After has passed, polls included', async () => {
    hermes.rateLimited = 1;
    hermes.retryAfter = '1';
    const w = await pythWorker(hermes, { symbols: ['SOL'], intervalMs: 5000 });
    try {
      // Before asking: Retry-After counts from the 429's arrival, which is later.
      const limitedAt = Date.now();
      const limited = await w.worker.tick();
      assert.equal(limited.error?.code, 'source_rate_limited');
      assert.equal(limited.error?.retryAfterMs, 1000);
      const connecting = hermes.nextStream();
      w.worker.start();
      const again = await w.worker.tick();
      assert.equal(again.error?.code, 'source_rate_limited', 'a poll inside the window fails without asking');
      await connecting;
      assert.ok(Date.now() - limitedAt >= 990, 'the stream waited for Retry-After');
      assert.deepEqual(
        hermes.requests.map((r) => r.path),
        [LATEST, STREAM],
        'nothing was asked inside the window',
      );
    } finally {
      await w.stop();
    }
  });

  it('401: the body is logged with the key removed, the stream retries with backoff, the polls fail', async () => {
    hermes.requiredKey = 'the-right-key';
    const w = await pythWorker(hermes, { symbols: ['SOL'], source: { apiKey: 'wrong-key-1234' } });
    try {
      w.worker.start();
      await waitFor(() => hermes.requestsTo(STREAM).length >= 3, { what: 'stream retries' });
      const tick = await w.worker.tick();
      assert.equal(tick.error?.code, 'source_unauthorized');
      const bodies = w.lines.filter((l) => l.data.status === 401).map((l) => String(l.data.body));
      assert.ok(bodies.length >= 2);
      for (const body of bodies) {
        assert.equal(body, 'Unauthorized: invalid access token [redacted]');
      }
      assert.equal(JSON.stringify(w.lines).includes('wrong-key-1234'), false, 'the key appears in no log line');
      assert.equal(warned(w.lines, /could not connect/).length, 1, 'repeated connect failures are not a flood');
    } finally {
      await w.stop();
    }
  });

  it('confidence: an update whose conf / price exceeds the limit is skipped and counted', async () => {
    const w = await pythWorker(hermes, { symbols: ['SOL'], source: { maxConfRatio: '0.01' } });
    try {
      const stream = await w.startStreaming();
      const t = nowS() + 1;
      stream.send([sol('20000000000', t, '200000001')]); // 200 ± 2.00000001: just over 1 %
      stream.send([sol('20100000000', t, '201000001')]);
      const arriving = w.published((e) => e.price === '202');
      stream.send([sol('20200000000', t + 1, '202000000')]); // exactly 1 %: accepted
      await arriving;
      assert.deepEqual(w.source.stats().lowConfidence, { SOL: 2 });
      assert.equal(warned(w.lines, /too uncertain/).length, 1, 'logged once a minute per feed, not per update');
      assert.equal(
        w.events.some((e) => e.price === '200' || e.price === '201'),
        false,
      );
    } finally {
      await w.stop();
    }
  });

  it('bad stream events are skipped; error events are logged; the stream goes on', async () => {
    const w = await pythWorker(hermes, { symbols: ['SOL'] });
    try {
      const connecting = hermes.nextStream();
      w.worker.start();
      const stream = await connecting;
      stream.write('data: {not json\n\n');
      stream.write('data: {"binary":{}}\n\n');
      stream.write('event: error\ndata: Error receiving update: Lagged(3)\n\n');
      const arriving = w.published((e) => e.price === '190');
      stream.send([sol('19000000000', nowS() + 1)]);
      await arriving;
      assert.equal(w.source.stats().stream.errorEvents, 1);
      assert.equal(stream.isClosed, false);
      assert.equal(warned(w.lines, /without a "parsed" array/).length, 1);
    } finally {
      await w.stop();
    }
  });
});
