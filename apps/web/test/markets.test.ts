/**
 * Several markets on the trading page, in headless Chromium against real processes: the market
 * switcher, candle history that survives a reload, and staleness judged per market.
 *
 * To make one market stale while the others tick, the last test runs the roles apart: the
 * gateway and API serve SOL, BTC and ETH, the price worker prices only SOL and ETH
 * (`SYMBOLS=SOL,ETH` for that process), and the test itself publishes BTC prices through Redis
 * the way the worker does (store, then publish). When it stops, BTC goes stale on its own.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import Big from 'big.js';
import type { Browser } from 'playwright-core';
import { connectRedisBroker, createEventPublisher, createPriceStore, type Broker } from '@repo/broker';
import { waitFor } from '@repo/test-support';
import { newPage, screenshotPath } from './support/browser.ts';
import { startAllInOne, type AllInOne } from './support/all-in-one.ts';
import { startSplitSystem, type SplitSystem } from './support/split-system.ts';
import { availableUsdText, TradingPage, uniqueUsername } from './support/trading-page.ts';

const priceShown = async (ui: TradingPage) => new Big(((await ui.price.textContent()) ?? '').replace(/,/g, ''));

describe('markets on one system', () => {
  let running: AllInOne | undefined;
  let browser: Browser;
  let baseUrl: string;

  before(async () => {
    running = await startAllInOne({ PRICE_INTERVAL_MS: '200', CANDLE_FLUSH_INTERVAL_MS: '200' });
    ({ browser, baseUrl } = running);
  });
  after(async () => {
    await running?.stop();
  });

  test('the market switcher changes the price, the chart and the ticket; BTC trades beside SOL and ETH', async () => {
    const { context, page, errors } = await newPage(browser, baseUrl);
    const ui = new TradingPage(page);
    await ui.open();
    await ui.signUp(uniqueUsername('markets'));

    assert.deepEqual(
      await ui.market.locator('option').evaluateAll((os) => os.map((o) => (o as HTMLOptionElement).value)),
      ['SOL', 'BTC', 'ETH'],
    );
    assert.equal(await ui.market.inputValue(), 'SOL');
    await ui.waitForPriceChanges(1);
    const sol = await priceShown(ui);
    assert.ok(sol.gt(50) && sol.lt(1000), `SOL at ${sol.toFixed()}`);

    await ui.chooseMarket('BTC');
    await ui.waitForPriceChanges(1);
    const btc = await priceShown(ui);
    assert.ok(btc.gt(10_000), `BTC at ${btc.toFixed()}`);
    assert.equal(await ui.chart.getAttribute('aria-label'), 'BTC/USD price chart, 1 minute candles');
    await ui.waitForChart();
    const ticket = ui.page.getByRole('region', { name: 'Trade', exact: true });
    assert.equal(await ticket.locator('.unit').textContent(), 'BTC');

    const orderId = await ui.placeOrder('Buy', '0.01', 'filled');
    assert.match((await ui.orderRow(orderId).textContent()) ?? '', /BTC.*Buy.*0\.0100.*Filled/);
    assert.match(
      (await page.getByTestId('order-result').textContent()) ?? '',
      /^Bought 0\.0100 BTC at [\d,]+(?:\.\d{1,2})? /,
    );
    await page.waitForFunction(() => document.querySelector('[data-testid="btc-size"]')?.textContent === '0.0100');
    assert.equal(await ui.figure('sol-size').textContent(), '0.0000');
    assert.equal(await ui.figure('eth-size').textContent(), '0.0000');
    const response = await fetch(`${baseUrl}/portfolio`, { headers: { authorization: `Bearer ${await ui.token()}` } });
    const rest = (await response.json()) as { balances: { asset: string; available: string }[] };
    await page.waitForFunction(
      (text) => document.querySelector('[data-testid="usd-available"]')?.textContent === text,
      availableUsdText(rest.balances.find((b) => b.asset === 'USD')?.available ?? ''),
    );

    await ui.chooseMarket('ETH');
    await ui.waitForPriceChanges(1);
    const eth = await priceShown(ui);
    assert.ok(eth.gt(1000) && eth.lt(10_000), `ETH at ${eth.toFixed()}`);
    assert.equal(await ticket.locator('.unit').textContent(), 'ETH');
    assert.equal(await ui.chart.getAttribute('data-symbol'), 'ETH');
    await page.screenshot({ path: screenshotPath('trading-eth.png') });
    assert.deepEqual(errors, []);
    await context.close();
  });

  test('the chart loads its history on open: after a reload it shows the same past, from the server', async () => {
    const { context, page, errors } = await newPage(browser, baseUrl);
    const ui = new TradingPage(page);
    await ui.open();
    await ui.interval('1 second').click();
    const before = await ui.waitForChart(6);

    await page.reload();
    await ui.waitForStatus('Live');
    assert.equal(await ui.interval('1 second').getAttribute('aria-checked'), 'true', 'the interval is remembered');
    const after = await ui.waitForChart(1);
    assert.ok(after.first <= before.first, `the oldest candle shown (${before.first}) is still there (${after.first})`);
    assert.ok(after.candles >= before.candles, `${after.candles} candles after the reload, ${before.candles} before`);
    const history = (await (await fetch(`${baseUrl}/candles?symbol=SOL&interval=1s`)).json()) as {
      candles: { t: number }[];
    };
    assert.equal(after.first, history.candles[0]?.t, 'the first candle is the server’s');

    // Another interval is another history, loaded the same way.
    await ui.interval('1 hour').click();
    const hourly = await ui.waitForChart(1);
    assert.equal(hourly.first % 3_600_000, 0);
    assert.equal(await ui.chart.getAttribute('data-interval'), '1h');
    assert.deepEqual(errors, []);
    await context.close();
  });
});

describe('one stale market', () => {
  let system: SplitSystem | undefined;
  let browser: Browser;
  let broker: Broker | undefined;
  let baseUrl: string;

  before(async () => {
    system = await startSplitSystem('tw_web_markets', {
      SYMBOLS: 'SOL,BTC,ETH',
      PRICE_INTERVAL_MS: '200',
      MAX_PRICE_AGE_MS: '3000',
    });
    ({ browser, baseUrl } = system);
    const apiAndGateway = system.start(['api', 'ws']);
    const worker = system.start(['worker'], { SYMBOLS: 'SOL,ETH' });
    [broker] = await Promise.all([connectRedisBroker(system.redis.url), apiAndGateway.ready, worker.ready]);
  });
  after(async () => {
    await broker?.close();
    await system?.stop();
  });

  /** What the worker does for a quote: the latest price first, then the event. */
  const publishBtc = async (price: string) => {
    const stored = await createPriceStore(broker!).setPrice('BTC', price);
    await createEventPublisher(broker!).publishPriceUpdate('BTC', price, stored.timestamp);
  };

  test('a price the gateway hands over without a verdict is shown stale once the server says it is', async () => {
    // BTC's last price is a minute old; nothing publishes BTC. The gateway's snapshot carries no
    // stale flag; GET /prices, held here until that snapshot is on screen, does.
    const old = new Date(Date.now() - 60_000).toISOString();
    await createPriceStore(broker!).setPrice('BTC', '79999.5', old);
    const { context, page, errors } = await newPage(browser, baseUrl);
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    await page.route('**/prices', async (route) => {
      await held;
      await route.continue();
    });
    const ui = new TradingPage(page);
    await ui.open();
    await ui.chooseMarket('BTC');
    await page.getByTestId('price').filter({ hasText: '79,999.50' }).waitFor();
    const answered = page.waitForResponse((r) => new URL(r.url()).pathname === '/prices');
    release();
    await answered;
    // At once, not when this page's own clock would call it stale (MAX_PRICE_AGE_MS, 3 s, after
    // the snapshot arrived).
    await ui.region('Price').getByTestId('price-stale').waitFor({ timeout: 1500 });
    assert.equal(await ui.price.getAttribute('data-stale'), 'true');
    assert.deepEqual(errors, []);
    await context.close();
  });

  test('BTC without new ticks goes stale and disables only its own Buy and Sell; SOL and ETH trade on', async () => {
    const { context, page, errors } = await newPage(browser, baseUrl);
    const ui = new TradingPage(page);
    await ui.open();
    await ui.signUp(uniqueUsername('stale'));
    const staleBadge = ui.region('Price').getByTestId('price-stale');

    await publishBtc('81234.56');
    await ui.chooseMarket('BTC');
    await page.getByTestId('price').filter({ hasText: '81,234.56' }).waitFor();
    await staleBadge.waitFor({ timeout: 15_000 });
    assert.equal(await ui.price.getAttribute('data-stale'), 'true');
    assert.equal(await ui.buy.isDisabled(), true);
    assert.equal(await ui.sell.isDisabled(), true);
    await page.screenshot({ path: screenshotPath('trading-stale-market.png') });

    for (const symbol of ['SOL', 'ETH']) {
      await ui.chooseMarket(symbol);
      assert.equal(await ui.price.getAttribute('data-stale'), 'false', `${symbol} is fresh`);
      assert.equal(await staleBadge.count(), 0);
      assert.equal(await ui.buy.isEnabled(), true, `${symbol} can be bought`);
    }
    await ui.placeOrder('Buy', '0.1', 'filled');

    // The server judges the same way: a BTC order now would fill at a frozen price.
    const order = await fetch(`${baseUrl}/orders`, {
      method: 'POST',
      headers: { authorization: `Bearer ${await ui.token()}`, 'content-type': 'application/json' },
      body: JSON.stringify({ symbol: 'BTC', side: 'buy', size: '0.001' }),
    });
    assert.equal(order.status, 422);
    assert.equal(((await order.json()) as { reason: string }).reason, 'price_stale');

    // The worker, a process of its own, writes the candles of what it prices; BTC has none.
    const candles = async (symbol: string) =>
      ((await (await fetch(`${baseUrl}/candles?symbol=${symbol}&interval=1s`)).json()) as { candles: unknown[] })
        .candles;
    // Polled at a pace the API's candle limit (120 a minute per address) allows for the whole wait.
    await waitFor(async () => (await candles('SOL')).length > 0 && (await candles('ETH')).length > 0, {
      timeoutMs: 15_000,
      intervalMs: 500,
      what: 'SOL and ETH candles written by the worker',
    });
    assert.deepEqual(await candles('BTC'), []);

    await ui.chooseMarket('BTC');
    assert.equal(await ui.buy.isDisabled(), true, 'BTC is still stale');
    // A fresh BTC price: BTC trades again.
    await publishBtc('81300');
    await staleBadge.waitFor({ state: 'detached' });
    assert.equal(await ui.buy.isEnabled(), true);
    assert.equal(await ui.price.textContent(), '81,300.00');
    assert.deepEqual(errors, []);
    await context.close();
  });
});
