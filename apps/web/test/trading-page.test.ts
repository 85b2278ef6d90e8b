/**
 * The trading page in headless Chromium against the whole system started as `npm start`
 * starts it (one process: API, gateway, price worker; embedded database; in-process broker),
 * with a fast price tick. Every check goes through what a user sees: labels, buttons,
 * regions, the status role, and the figures shown.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { formatSize } from '../src/lib/money.ts';
import { reasonText } from '../src/lib/reasons.ts';
import { newPage, screenshotPath } from './support/browser.ts';
import { availableUsdText, TradingPage, uniqueUsername } from './support/trading-page.ts';
import { startAllInOne, type AllInOne } from './support/all-in-one.ts';

let browser: Browser;
let baseUrl: string;
let running: AllInOne | undefined;

before(async () => {
  running = await startAllInOne({
    PRICE_INTERVAL_MS: '200',
  });
  ({ browser, baseUrl } = running);
});

after(async () => {
  await running?.stop();
});

async function api<T>(path: string, token: string): Promise<T> {
  const response = await fetch(`${baseUrl}${path}`, { headers: { authorization: `Bearer ${token}` } });
  assert.equal(response.status, 200, `GET ${path}`);
  return (await response.json()) as T;
}

type RestPortfolio = {
  balances: { asset: string; available: string }[];
  positions: { asset: string; size: string; avgEntryPrice: string }[];
};

describe('trading page', () => {
  // One user's page carries the first scenarios in order, as one person would use it.
  let main: { context: BrowserContext; page: Page; errors: string[]; ui: TradingPage };

  before(async () => {
    const opened = await newPage(browser, baseUrl);
    main = { ...opened, ui: new TradingPage(opened.page) };
  });
  after(async () => {
    await main?.context.close();
  });

  test('a new user signs up, sees the price change twice without reload, and the chart grows', async () => {
    const { page, ui, errors } = main;
    await ui.open();
    await page.evaluate(() => ((window as unknown as { __sameDocument: boolean }).__sameDocument = true));

    await ui.signUp(uniqueUsername('new'));
    assert.equal(await ui.figure('usd-available').textContent(), '10,000.00');
    assert.equal(await ui.figure('sol-size').textContent(), '0.0000');

    // One-second candles: a new candle every second from the live ticks.
    await ui.interval('1 second').click();
    assert.equal(await ui.interval('1 second').getAttribute('aria-checked'), 'true');
    const before = await ui.waitForChart();
    const seen = await ui.waitForPriceChanges(2);
    assert.equal(seen.length, 3, `prices seen: ${seen.join(' → ')}`);
    await ui.waitForChart(before.candles + 2);
    assert.match(
      (await ui.region('Price').getByTestId('price-change').textContent()) ?? '',
      /^[+-]?[\d,]+\.\d{2} \([+-]?\d+\.\d{2}%\)$/,
    );
    assert.equal(
      await page.evaluate(() => (window as unknown as { __sameDocument?: boolean }).__sameDocument),
      true,
      'the page was not reloaded',
    );
    assert.deepEqual(errors, []);
  });

  test('Buy fills: the order shows as filled and the portfolio changes to what GET /portfolio says', async () => {
    const { page, ui, errors } = main;
    const token = await ui.token();

    const orderId = await ui.placeOrder('Buy', '1.5', 'filled');
    const row = ui.orderRow(orderId);
    assert.match((await row.textContent()) ?? '', /Buy.*1\.5000.*Filled/);
    assert.match(
      (await page.getByTestId('order-result').textContent()) ?? '',
      /^Bought 1\.5000 SOL at [\d,]+(?:\.\d{1,2})? /,
    );

    // The live portfolio event arrives without a page reload.
    await page.waitForFunction(() => document.querySelector('[data-testid="sol-size"]')?.textContent === '1.5000');
    const rest = await api<RestPortfolio>('/portfolio', token);
    const usd = rest.balances.find((b) => b.asset === 'USD');
    const sol = rest.positions.find((p) => p.asset === 'SOL');
    assert.ok(usd && sol, 'GET /portfolio has USD and SOL');
    await page.waitForFunction(
      (text) => document.querySelector('[data-testid="usd-available"]')?.textContent === text,
      availableUsdText(usd.available),
    );
    assert.equal(await ui.figure('sol-size').textContent(), formatSize(sol.size));
    assert.notEqual(availableUsdText(usd.available), '10,000.00');
    // One buy: the average entry is its price.
    assert.equal(await ui.figure('sol-avg-entry').textContent(), await row.locator('.col-price').textContent());
    assert.equal(
      await page.evaluate(() => (window as unknown as { __sameDocument?: boolean }).__sameDocument),
      true,
      'the page was not reloaded',
    );
    assert.deepEqual(errors, []);
  });

  test('an order too large is shown as rejected with its reason', async () => {
    const { page, ui, errors } = main;
    const usdBefore = await ui.figure('usd-available').textContent();

    const orderId = await ui.placeOrder('Buy', '1000000', 'rejected');
    const row = ui.orderRow(orderId);
    assert.match((await row.textContent()) ?? '', /Rejected/);
    const reason = ((await row.locator('.reason').textContent()) ?? '').trim();
    assert.ok(reason.length > 0, 'the rejected order shows a reason');
    assert.equal(await page.getByTestId('order-result').textContent(), `Rejected: ${reason}`);
    // …and it is the reason the API recorded for that order.
    const { orders } = await api<{ orders: { orderId: number; status: string; reason: string | null }[] }>(
      '/orders',
      await ui.token(),
    );
    const recorded = orders.find((o) => o.orderId === orderId);
    assert.equal(recorded?.status, 'rejected');
    assert.equal(await row.locator('.reason').getAttribute('data-reason'), recorded?.reason);
    assert.equal(reason, reasonText(recorded?.reason ?? null));
    // Nothing was bought.
    assert.equal(await ui.figure('usd-available').textContent(), usdBefore);
    assert.equal(await ui.figure('sol-size').textContent(), '1.5000');
    assert.deepEqual(errors, []);
  });

  test('screenshots at phone and desktop widths; the layout fits and holds still while prices tick', async () => {
    const { page, ui, errors } = main;
    await ui.placeOrder('Sell', '0.5', 'filled');
    await page.getByLabel('Size').fill('0.75');
    for (const { name, width, height } of [
      { name: 'phone', width: 390, height: 844 },
      { name: 'desktop', width: 1440, height: 900 },
    ]) {
      await page.setViewportSize({ width, height });
      // No horizontal scrolling at this width.
      assert.ok(
        await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth),
        `${name}: page wider than the screen`,
      );
      // No layout jump per tick: every panel keeps its box while the price changes.
      const boxes = () =>
        page.evaluate(() =>
          [...document.querySelectorAll('section, header')].map((el) => {
            const r = el.getBoundingClientRect();
            return `${el.getAttribute('aria-label') ?? el.tagName}:${r.x},${r.y},${r.width},${r.height}`;
          }),
        );
      await ui.waitForPriceChanges(1);
      const first = await boxes();
      await ui.waitForPriceChanges(3);
      assert.deepEqual(await boxes(), first, `${name}: panels moved while prices ticked`);
      await page.screenshot({ path: screenshotPath(`trading-${name}.png`), fullPage: true });
    }
    assert.deepEqual(errors, []);
  });

  test('two users in two browsers never see each other’s orders or portfolio', async () => {
    // Every order id and SOL size each page ever renders, recorded from the first paint.
    // A string, not a function: the test runner's transform would add helpers the page lacks.
    const recorder = `
      window.__ordersSeen = new Set();
      window.__solSeen = new Set();
      new MutationObserver(function () {
        for (const el of document.querySelectorAll('[data-order-id]'))
          window.__ordersSeen.add(el.getAttribute('data-order-id'));
        const sol = document.querySelector('[data-testid="sol-size"]');
        if (sol) window.__solSeen.add(sol.textContent);
      }).observe(document, { subtree: true, childList: true, characterData: true });`;
    const [a, b] = await Promise.all([newPage(browser, baseUrl), newPage(browser, baseUrl)]);
    await Promise.all([a.context.addInitScript(recorder), b.context.addInitScript(recorder)]);
    const alice = new TradingPage(a.page);
    const bob = new TradingPage(b.page);
    await Promise.all([alice.open(), bob.open()]);
    await Promise.all([alice.signUp(uniqueUsername('alice')), bob.signUp(uniqueUsername('bob'))]);

    // Both trade at the same time, so each page is live while the other's events flow.
    const [aliceOrders, bobOrders] = await Promise.all([
      (async () => [await alice.placeOrder('Buy', '1', 'filled'), await alice.placeOrder('Buy', '0.25', 'filled')])(),
      (async () => [
        await bob.placeOrder('Buy', '2', 'filled'),
        await bob.placeOrder('Buy', '5000000', 'rejected'),
        await bob.placeOrder('Sell', '0.5', 'filled'),
      ])(),
    ]);
    await a.page.waitForFunction(() => document.querySelector('[data-testid="sol-size"]')?.textContent === '1.2500');
    await b.page.waitForFunction(() => document.querySelector('[data-testid="sol-size"]')?.textContent === '1.5000');

    const seen = (page: Page) =>
      page.evaluate(() => {
        const w = window as unknown as { __ordersSeen: Set<string>; __solSeen: Set<string> };
        return { orders: [...w.__ordersSeen].map(Number).sort((x, y) => x - y), sol: [...w.__solSeen].sort() };
      });
    const byId = (x: number, y: number) => x - y;
    const seenByAlice = await seen(a.page);
    const seenByBob = await seen(b.page);
    assert.deepEqual(seenByAlice.orders, aliceOrders.sort(byId));
    assert.deepEqual(seenByBob.orders, bobOrders.sort(byId));
    for (const value of seenByAlice.sol)
      assert.ok(['0.0000', '1.0000', '1.2500'].includes(value), `alice saw SOL size ${value}`);
    for (const value of seenByBob.sol)
      assert.ok(['0.0000', '2.0000', '1.5000'].includes(value), `bob saw SOL size ${value}`);
    assert.deepEqual([...a.errors, ...b.errors], []);
    await a.context.close();
    await b.context.close();
  });

  test('an auth answered "not now" (internal_error) is asked again: orders and portfolio go live', async () => {
    const { context, page, errors } = await newPage(browser, baseUrl);
    // The page's own socket, through a route that answers its first auth as a gateway whose
    // session store was slow does; everything else passes through to the real gateway.
    const refused: unknown[] = [];
    let onRefused: () => void = () => {};
    const refusedOnce = new Promise<void>((resolve) => (onRefused = resolve));
    await page.routeWebSocket(/./, (ws) => {
      const server = ws.connectToServer();
      ws.onMessage((message) => {
        const request = JSON.parse(String(message)) as { type?: string; id?: unknown };
        if (request.type === 'auth' && refused.length === 0) {
          refused.push(request.id);
          onRefused();
          ws.send(JSON.stringify({ type: 'error', id: request.id, code: 'internal_error', message: 'try again' }));
          return;
        }
        server.send(message);
      });
    });
    const ui = new TradingPage(page);
    await ui.open();
    await ui.signUp(uniqueUsername('notnow'));
    await refusedOnce;
    await ui.waitForStatus('Live');

    // An order placed outside the page (another tab) reaches it only through its live streams.
    const response = await fetch(`${baseUrl}/orders`, {
      method: 'POST',
      headers: { authorization: `Bearer ${await ui.token()}`, 'content-type': 'application/json' },
      body: JSON.stringify({ symbol: 'SOL', side: 'buy', size: '0.5' }),
    });
    assert.equal(response.status, 201);
    const { orderId } = (await response.json()) as { orderId: number };
    await ui.orderRow(orderId).waitFor({ timeout: 15_000 });
    await page.waitForFunction(() => document.querySelector('[data-testid="sol-size"]')?.textContent === '0.5000');
    assert.deepEqual(errors, []);
    await context.close();
  });

  test('an order still on its way when the user logs out is not the next user’s: no order, no logout', async () => {
    const { context, page, errors } = await newPage(browser, baseUrl);
    const ui = new TradingPage(page);
    await ui.open();
    await ui.signUp(uniqueUsername('leaving'));
    // The order waits on the way to the API until the first user has logged out and the next
    // one has signed in; it then arrives with the first user's revoked token (401).
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    let reached!: () => void;
    const onTheWay = new Promise<void>((resolve) => (reached = resolve));
    await page.route('**/orders', async (route) => {
      if (route.request().method() !== 'POST') return route.continue();
      reached();
      await held;
      return route.continue();
    });
    await page.getByLabel('Size').fill('0.1');
    await ui.buy.click();
    await onTheWay;
    await page.getByRole('button', { name: 'Log out', exact: true }).click();
    await ui.signUp(uniqueUsername('next'));
    const answered = page.waitForResponse((r) => r.url().endsWith('/orders') && r.request().method() === 'POST');
    release();
    assert.equal((await answered).status(), 401);
    await page.unroute('**/orders');

    // The next user is still logged in, with no order of the first one's.
    await page.getByRole('button', { name: 'Log out', exact: true }).waitFor();
    await ui.placeOrder('Buy', '0.2', 'filled');
    assert.equal(await ui.orderRows().count(), 1);
    assert.equal(await page.getByText('Your session is no longer valid').count(), 0);
    assert.deepEqual(errors, []);
    await context.close();
  });

  test('the status says Offline while the browser has no network, and Live again after', async () => {
    const { context, ui, errors } = main;
    await context.setOffline(true);
    await ui.waitForStatus('Offline');
    await context.setOffline(false);
    await ui.waitForStatus('Live', 30_000);
    await ui.waitForPriceChanges(1);
    assert.deepEqual(errors, []);
  });

  test('a reload stays logged in; log out clears the session; log in brings the orders back', async () => {
    const { page, ui, errors } = main;
    const username = await page.evaluate(
      () => (JSON.parse(sessionStorage.getItem('tradewire.session') ?? '{}') as { username: string }).username,
    );
    const orderIds = await ui.orderRows().evaluateAll((rows) => rows.map((r) => r.getAttribute('data-order-id')));
    const solSize = await ui.figure('sol-size').textContent();
    assert.equal(orderIds.length, 3);

    await page.reload();
    await page.getByRole('button', { name: 'Log out', exact: true }).waitFor();
    await ui.waitForStatus('Live');
    await page.waitForFunction(
      (n) => document.querySelectorAll('[aria-label="Orders"] tr[data-order-id]').length === n,
      orderIds.length,
    );

    await page.getByRole('button', { name: 'Log out', exact: true }).click();
    await page.getByLabel('Username').waitFor();
    assert.equal(await page.evaluate(() => sessionStorage.length), 0);
    assert.equal(await ui.orderRows().count(), 0);
    await page.reload();
    await page.getByLabel('Username').waitFor();

    await ui.logIn(username);
    await page.waitForFunction(
      (n) => document.querySelectorAll('[aria-label="Orders"] tr[data-order-id]').length === n,
      orderIds.length,
    );
    assert.deepEqual(
      await ui.orderRows().evaluateAll((rows) => rows.map((r) => r.getAttribute('data-order-id'))),
      orderIds,
    );
    assert.equal(await ui.figure('sol-size').textContent(), solSize);
    assert.deepEqual(errors, []);
  });

  test('logging out elsewhere (another tab, the API) ends the session on this page at once', async () => {
    const { page, ui, errors } = main;
    const token = await ui.token();
    const response = await fetch(`${baseUrl}/auth/logout`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}` },
    });
    assert.equal(response.status, 204);
    // The gateway's session_revoked reaches the page: back to the login form, with a notice.
    await page.getByLabel('Username').waitFor();
    await page.getByText('You were logged out').waitFor();
    assert.equal(await page.evaluate(() => sessionStorage.length), 0);
    assert.equal(await ui.orderRows().count(), 0);
    await ui.waitForStatus('Live');
    assert.deepEqual(errors, []);
  });
});
