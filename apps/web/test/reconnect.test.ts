/**
 * The gateway goes away and comes back while the page is open. The system runs split as in
 * production: API + price worker in one process, the gateway in another, sharing a private
 * redis-server and a PostgreSQL database created for this file and dropped after.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { Browser } from 'playwright-core';
import type { TradewireProcess } from '@repo/test-support';
import { newPage, screenshotPath } from './support/browser.ts';
import { startSplitSystem, type SplitSystem } from './support/split-system.ts';
import { TradingPage, uniqueUsername } from './support/trading-page.ts';

let system: SplitSystem | undefined;
let browser: Browser;
let gateway: TradewireProcess;
let baseUrl: string;

before(async () => {
  system = await startSplitSystem('tw_web', { PRICE_INTERVAL_MS: '200' });
  ({ browser, baseUrl } = system);
  // Both apply migrations at start; a PostgreSQL advisory lock makes them take turns.
  const apiAndWorker = system.start(['api', 'worker']);
  gateway = system.start(['ws']);
  await Promise.all([apiAndWorker.ready, gateway.ready]);
});

after(async () => {
  await system?.stop();
});

test('the gateway stops and starts again: Reconnecting, then Live, prices flow, the account is reloaded', async () => {
  const { context, page, errors } = await newPage(browser, baseUrl);
  const ui = new TradingPage(page);
  await ui.open();
  await ui.signUp(uniqueUsername('recon'));
  await ui.placeOrder('Buy', '1', 'filled');
  await ui.waitForPriceChanges(2);

  await gateway.stop('SIGTERM');
  await ui.waitForStatus('Reconnecting');
  await page.screenshot({ path: screenshotPath('trading-reconnecting.png') });

  // While the page has no live connection, an order is placed outside it (another tab, say):
  // only the reload after the reconnect can bring it to this page.
  const token = await ui.token();
  const response = await fetch(`${baseUrl}/orders`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ symbol: 'SOL', side: 'buy', size: '0.5' }),
  });
  assert.equal(response.status, 201);
  const { orderId } = (await response.json()) as { orderId: number };

  // A page opened while the gateway is down: its first connection fails, then it catches up.
  const late = await newPage(browser, baseUrl);
  const lateUi = new TradingPage(late.page);
  await late.page.goto('/');
  await lateUi.waitForStatus('Reconnecting');

  // After the reconnect the page reloads orders and portfolio over REST, and the chart refetches
  // the candles of the time it missed.
  const isGet = (path: string) => (r: { url(): string; request(): { method(): string } }) =>
    new URL(r.url()).pathname === path && r.request().method() === 'GET';
  const reloaded = Promise.all([
    page.waitForResponse(isGet('/orders'), { timeout: 45_000 }),
    page.waitForResponse(isGet('/portfolio'), { timeout: 45_000 }),
    page.waitForResponse(isGet('/candles'), { timeout: 45_000 }),
  ]);
  gateway = system!.start(['ws']);
  await gateway.ready;
  await ui.waitForStatus('Live', 30_000);
  const [ordersResponse, portfolioResponse, candlesResponse] = await reloaded;
  assert.equal(ordersResponse.status(), 200);
  assert.equal(portfolioResponse.status(), 200);
  assert.equal(candlesResponse.status(), 200);
  assert.equal(new URL(candlesResponse.url()).searchParams.get('symbol'), 'SOL');
  await ui.waitForPriceChanges(2);
  await ui.orderRow(orderId).waitFor();
  await page.waitForFunction(() => document.querySelector('[data-testid="sol-size"]')?.textContent === '1.5000');
  await lateUi.waitForStatus('Live', 30_000);
  await lateUi.waitForPriceChanges(2);
  assert.deepEqual([...errors, ...late.errors], []);
  await late.context.close();
  await context.close();
});
