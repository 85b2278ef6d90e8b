/**
 * The order ticket against the whole system (one process, as `npm start` runs it) with a fee
 * rate other than the default, a slow price tick and a short price age limit: the page
 * estimates with the server's fee rate, shows a stale price as such and keeps Buy and Sell
 * disabled while it is, a retry after a lost answer executes the order once, and the same
 * order placed again once the first one's fate is known is a new order.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import Big from 'big.js';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { newPage } from './support/browser.ts';
import { TradingPage, uniqueUsername } from './support/trading-page.ts';
import { startAllInOne, type AllInOne } from './support/all-in-one.ts';

let browser: Browser;
let baseUrl: string;
let running: AllInOne | undefined;

before(async () => {
  running = await startAllInOne({
    FEE_RATE: '0.002',
    // A tick every 6 s, stale 3 s after each: the page goes fresh → stale → fresh, and an order
    // placed right after a tick has 3 s to reach the API (1.5 s was too short for a routed,
    // retried order on a busy CI machine: it was rejected as stale).
    PRICE_INTERVAL_MS: '6000',
    MAX_PRICE_AGE_MS: '3000',
  });
  ({ browser, baseUrl } = running);
});

after(async () => {
  await running?.stop();
});

describe('order ticket', () => {
  let main: { context: BrowserContext; page: Page; errors: string[]; ui: TradingPage };
  // While set, the page's socket holds order events back: an order whose answer was lost stays
  // of unknown fate for as long as a test needs, and becomes known when they are released.
  let holdOrderEvents = false;
  const held: (() => void)[] = [];
  const releaseOrderEvents = () => {
    holdOrderEvents = false;
    for (const deliver of held.splice(0)) deliver();
  };

  before(async () => {
    const opened = await newPage(browser, baseUrl);
    main = { ...opened, ui: new TradingPage(opened.page) };
    await opened.page.routeWebSocket(/./, (ws) => {
      const server = ws.connectToServer();
      ws.onMessage((message) => server.send(message));
      server.onMessage((message) => {
        const type = (JSON.parse(String(message)) as { type?: unknown }).type;
        if (holdOrderEvents && (type === 'order_filled' || type === 'order_rejected')) {
          held.push(() => ws.send(message));
          return;
        }
        ws.send(message);
      });
    });
    await main.ui.open();
    await main.ui.signUp(uniqueUsername('ticket'));
  });
  after(async () => {
    await main?.context.close();
  });

  const buy = () => main.page.getByRole('button', { name: 'Buy', exact: true });
  const sell = () => main.page.getByRole('button', { name: 'Sell', exact: true });
  const staleBadge = () => main.ui.region('Price').getByTestId('price-stale');

  /** The stale badge, the price's verdict and the ticket's buttons, as one render shows them. */
  async function staleness() {
    const handles = await Promise.all([main.ui.price, buy(), sell()].map((l) => l.elementHandle()));
    return main.page.evaluate(
      ([price, buyButton, sellButton]) => ({
        badge: document.querySelector('[data-testid="price-stale"]') !== null,
        stale: price!.getAttribute('data-stale'),
        buyDisabled: (buyButton as HTMLButtonElement).disabled,
        sellDisabled: (sellButton as HTMLButtonElement).disabled,
      }),
      handles,
    );
  }

  /** The first render (polled every 50 ms, for up to 10 s) whose stale badge is `badge`. */
  async function shownWhen(badge: boolean) {
    const deadline = Date.now() + 10_000;
    for (;;) {
      const shown = await staleness();
      if (shown.badge === badge) return shown;
      if (Date.now() > deadline) throw new Error(`the stale badge was never ${badge ? 'shown' : 'gone'}`);
      await main.page.waitForTimeout(50);
    }
  }

  test('estimates the fee at the fee rate the server announces', async () => {
    const { page } = main;
    await page.getByLabel('Size').fill('2');
    await page.getByText('Est. fee (0.2%)').waitFor();
    const [cost, fee] = await Promise.all([
      page.getByTestId('estimated-cost').textContent(),
      page.getByTestId('estimated-fee').textContent(),
    ]);
    const notional = new Big((cost ?? '').replace(/,/g, ''));
    const charged = new Big((fee ?? '').replace(/,/g, ''));
    // The cost is shown to the cent, the fee in full: 0.002 of the cost, within the cost's rounding.
    assert.ok(charged.minus(notional.times('0.002')).abs().lte('0.0001'), `${fee} for ${cost}`);
  });

  test('shows a stale price as stale with Buy and Sell disabled, and trades again at the next price', async () => {
    // Each state is read from one render: read one after another, a tick landing between two
    // reads (a busy machine delays ticks) made a stale badge sit beside a fresh price.
    await shownWhen(false);
    assert.deepEqual(await shownWhen(true), { badge: true, stale: 'true', buyDisabled: true, sellDisabled: true });
    assert.deepEqual(await shownWhen(false), { badge: false, stale: 'false', buyDisabled: false, sellDisabled: false });
    assert.deepEqual(main.errors, []);
  });

  test('retries an order whose answer was lost with the same Idempotency-Key: it executes once', async () => {
    const { page, ui } = main;
    const token = await ui.token();
    const keys: string[] = [];
    let retried!: () => void;
    const retry = new Promise<void>((resolve) => (retried = resolve));
    await page.route('**/orders', async (route) => {
      const request = route.request();
      if (request.method() !== 'POST') return route.continue();
      keys.push((await request.headerValue('idempotency-key')) ?? '');
      if (keys.length === 2) retried();
      if (keys.length === 1) {
        // The server executes the order; its answer never reaches the page.
        await route.fetch();
        return route.abort('failed');
      }
      return route.continue();
    });
    // Right after a tick, so the order is well inside the price age limit.
    await staleBadge().waitFor({ timeout: 10_000 });
    await staleBadge().waitFor({ state: 'detached', timeout: 10_000 });
    // The fill also arrives over the WebSocket; the retry's answer is the ticket's outcome.
    await ui.placeOrder('Buy', '0.5', 'filled');
    await retry;
    await page.getByTestId('order-result').filter({ hasText: 'Bought 0.5000 SOL' }).waitFor();
    await page.unroute('**/orders');

    assert.equal(keys.length, 2, 'one retry');
    assert.match(keys[0]!, /^[\x21-\x7e]{1,64}$/);
    assert.equal(keys[1], keys[0], 'the retry reuses the key');
    const response = await fetch(`${baseUrl}/orders`, { headers: { authorization: `Bearer ${token}` } });
    const { orders } = (await response.json()) as { orders: { status: string; requestedSize: string }[] };
    assert.deepEqual(
      orders.map((o) => [o.status, o.requestedSize]),
      [['filled', '0.5']],
      'executed once',
    );
    assert.equal(await ui.orderRows().count(), 1);

    // A new click is a new key.
    await staleBadge().waitFor({ timeout: 10_000 });
    await staleBadge().waitFor({ state: 'detached', timeout: 10_000 });
    const [request] = await Promise.all([
      page.waitForRequest((r) => r.url().endsWith('/orders') && r.method() === 'POST'),
      ui.placeOrder('Buy', '0.25', 'filled'),
    ]);
    assert.notEqual(await request.headerValue('idempotency-key'), keys[0]);
  });

  /** Routes POST /orders so that the first attempt executes and no attempt gets an answer. */
  async function loseEveryAnswer(): Promise<string[]> {
    const keys: string[] = [];
    await main.page.route('**/orders', async (route) => {
      const request = route.request();
      if (request.method() !== 'POST') return route.continue();
      keys.push((await request.headerValue('idempotency-key')) ?? '');
      // The first attempt reaches the server, which executes the order; no attempt of this
      // click gets an answer back (the network dropped for longer than the client retries).
      if (keys.length === 1) await route.fetch();
      return route.abort('failed');
    });
    return keys;
  }

  async function ordersOnServer(token: string): Promise<{ orderId: number; status: string; requestedSize: string }[]> {
    const response = await fetch(`${baseUrl}/orders`, { headers: { authorization: `Bearer ${token}` } });
    return ((await response.json()) as { orders: { orderId: number; status: string; requestedSize: string }[] }).orders;
  }

  test('an order of unknown fate keeps its key: placed again it executes once, and the ticket says so', async () => {
    const { page, ui } = main;
    const token = await ui.token();
    holdOrderEvents = true;
    try {
      const keys = await loseEveryAnswer();
      const result = page.getByTestId('order-result');
      await staleBadge().waitFor({ timeout: 10_000 });
      await staleBadge().waitFor({ state: 'detached', timeout: 10_000 });
      await page.getByLabel('Size').fill('0.125');
      await buy().click();
      await result.filter({ hasText: 'may have gone through' }).waitFor({ timeout: 15_000 });
      await page.unroute('**/orders');
      assert.equal(keys.length, 3, 'the client tried three times');
      assert.ok(keys.every((k) => k === keys[0]));

      // Clicked again while the fate is still unknown, after a look at another market (a new
      // ticket), the same order carries the same key: the server answers with the first.
      await ui.chooseMarket('BTC');
      await ui.chooseMarket('SOL');
      await page.getByLabel('Size').fill('0.125');
      const [again] = await Promise.all([
        page.waitForRequest((r) => r.url().endsWith('/orders') && r.method() === 'POST'),
        buy().click(),
      ]);
      assert.equal(await again.headerValue('idempotency-key'), keys[0]);
      const [first] = (await ordersOnServer(token)).filter((o) => o.requestedSize === '0.125');
      assert.ok(first, 'the first attempt executed');
      // Not a fresh fill: the user is told the earlier order went through and nothing was placed.
      await result
        .filter({ hasText: `Your earlier order #${first.orderId} had gone through: Bought 0.1250 SOL at ` })
        .filter({ hasText: 'Nothing new was placed.' })
        .waitFor();
      assert.equal((await ordersOnServer(token)).filter((o) => o.requestedSize === '0.125').length, 1, 'executed once');
      // Its fate is known: the key is not kept for the next order.
      assert.equal(await page.evaluate(() => sessionStorage.getItem('tradewire.undecided-order')), null);
      assert.deepEqual(main.errors, []);
    } finally {
      releaseOrderEvents();
    }
  });

  test('once an unanswered order shows in the orders, the same order placed again is a new order', async () => {
    const { page, ui } = main;
    const token = await ui.token();
    const keys = await loseEveryAnswer();
    const result = page.getByTestId('order-result');
    await staleBadge().waitFor({ timeout: 10_000 });
    await staleBadge().waitFor({ state: 'detached', timeout: 10_000 });
    holdOrderEvents = true;
    await page.getByLabel('Size').fill('0.375');
    await buy().click();
    await result.filter({ hasText: 'may have gone through' }).waitFor({ timeout: 15_000 });
    await page.unroute('**/orders');
    releaseOrderEvents();

    // The order's event on the socket shows it filled: its fate is known, and the ticket says so.
    const [first] = (await ordersOnServer(token)).filter((o) => o.requestedSize === '0.375');
    assert.ok(first, 'the first attempt executed');
    await ui.orderRow(first.orderId).and(page.locator('[data-status="filled"]')).waitFor();
    const toldEarlier = await result
      .filter({ hasText: `Your earlier order #${first.orderId} had gone through` })
      .waitFor({ timeout: 5000 })
      .then(
        () => true,
        () => false,
      );

    // The user deliberately buys the same size again: a new key, a new order.
    await staleBadge().waitFor({ timeout: 10_000 });
    await staleBadge().waitFor({ state: 'detached', timeout: 10_000 });
    await page.getByLabel('Size').fill('0.375');
    const [again] = await Promise.all([
      page.waitForRequest((r) => r.url().endsWith('/orders') && r.method() === 'POST'),
      buy().click(),
    ]);
    await page.waitForFunction(() => {
      const text = document.querySelector('[data-testid="order-result"]')?.textContent ?? '';
      return text.startsWith('Bought') || text.startsWith('Your earlier') || text.startsWith('Rejected');
    });
    const placed = (await ordersOnServer(token)).filter((o) => o.requestedSize === '0.375');
    assert.deepEqual(
      placed.map((o) => o.status),
      ['filled', 'filled'],
      'two orders',
    );
    assert.notEqual(await again.headerValue('idempotency-key'), keys[0], 'a new key');
    assert.ok(toldEarlier, 'the ticket said the earlier order went through once it showed in the orders');
    await result.filter({ hasText: 'Bought 0.3750 SOL at ' }).waitFor();
    assert.deepEqual(main.errors, []);
  });
});
