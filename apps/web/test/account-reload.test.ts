/**
 * The REST reload that catches the page up after its socket came back fails once: the page
 * tries it again, shows the orders it missed and drops its error, instead of showing "Live"
 * over a stale list and an error until the next reconnect. One process, as `npm start` runs it.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { Browser, WebSocketRoute } from 'playwright-core';
import { newPage } from './support/browser.ts';
import { startAllInOne, type AllInOne } from './support/all-in-one.ts';
import { TradingPage, uniqueUsername } from './support/trading-page.ts';

let browser: Browser;
let baseUrl: string;
let running: AllInOne | undefined;

before(async () => {
  running = await startAllInOne({ PRICE_INTERVAL_MS: '200' });
  ({ browser, baseUrl } = running);
});

after(async () => {
  await running?.stop();
});

test('a failed reload after a reconnect is retried: the missed order shows and the error goes', async () => {
  const { context, page, errors } = await newPage(browser, baseUrl);
  const ui = new TradingPage(page);
  // While set, the page's socket loses order events (the server replaying them too): only a
  // REST reload can bring the order placed meanwhile.
  let dropOrderEvents = false;
  const sockets: WebSocketRoute[] = [];
  await page.routeWebSocket(/./, (ws) => {
    sockets.push(ws);
    const server = ws.connectToServer();
    ws.onMessage((message) => server.send(message));
    server.onMessage((message) => {
      const type = (JSON.parse(String(message)) as { type?: unknown }).type;
      if (dropOrderEvents && (type === 'order_filled' || type === 'order_rejected')) return;
      ws.send(message);
    });
  });
  let failOrdersRead = false;
  await page.route(
    (url) => url.pathname === '/orders',
    async (route) => {
      if (failOrdersRead && route.request().method() === 'GET') {
        failOrdersRead = false;
        await route.abort('failed');
        return;
      }
      await route.continue();
    },
  );

  await ui.open();
  await ui.signUp(uniqueUsername('reload'));
  const first = await ui.placeOrder('Buy', '1', 'filled');

  dropOrderEvents = true;
  const token = await ui.token();
  const response = await fetch(`${baseUrl}/orders`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ symbol: 'SOL', side: 'buy', size: '0.5' }),
  });
  assert.equal(response.status, 201);
  const { orderId: missed } = (await response.json()) as { orderId: number };

  // Whether the error was ever on screen: a quick retry may take it away between two polls.
  await page.evaluate(() => {
    const seen = { error: false };
    (window as unknown as { reloadError: typeof seen }).reloadError = seen;
    new MutationObserver(() => {
      if (document.querySelector('[aria-label="Orders"] .form-error')) seen.error = true;
    }).observe(document.body, { childList: true, subtree: true, characterData: true });
  });
  failOrdersRead = true;
  const failed = page.waitForEvent('requestfailed', (r) => new URL(r.url()).pathname === '/orders');
  // The connection drops and comes back: the page reloads its account over REST.
  await sockets.at(-1)!.close({ code: 1012, reason: 'restart' });
  await failed;
  await ui.waitForStatus('Live');

  await ui.orderRow(missed).waitFor();
  await ui.region('Orders').locator('.form-error').waitFor({ state: 'detached' });
  assert.equal(
    await page.evaluate(() => (window as unknown as { reloadError: { error: boolean } }).reloadError.error),
    true,
  );
  assert.deepEqual(
    await ui.orderRows().evaluateAll((rows) => rows.map((r) => Number(r.getAttribute('data-order-id')))),
    [missed, first],
  );
  assert.deepEqual(errors, []);
  await context.close();
});
