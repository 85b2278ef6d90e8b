/**
 * GET /config names a gateway address the browser will not open (its WebSocket constructor
 * throws): the page says so instead of "Connecting…" for good, throws nothing, keeps reading the
 * config, drops the reason once it no longer holds, and connects once the address is right.
 * One process, as `npm start` runs it.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { Browser } from 'playwright-core';
import { newPage } from './support/browser.ts';
import { startAllInOne, type AllInOne } from './support/all-in-one.ts';
import { TradingPage } from './support/trading-page.ts';

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

test('a malformed gateway address: Offline with the reason, retried, Live once it is right', async () => {
  const { context, page, errors } = await newPage(browser, baseUrl);
  const ui = new TradingPage(page);
  let mode: 'malformed' | 'unreachable' | 'right' = 'malformed';
  let configReads = 0;
  let reread: () => void = () => {};
  const rereadTwice = new Promise<void>((resolve) => (reread = resolve));
  await page.route(
    (url) => url.pathname === '/config',
    async (route) => {
      if (mode === 'right') return route.continue();
      if (mode === 'unreachable') return route.abort('connectionrefused');
      if (++configReads === 3) reread();
      const response = await route.fetch();
      const config = (await response.json()) as Record<string, unknown>;
      await route.fulfill({ response, json: { ...config, wsUrl: 'ws://[not-a-host]:1' } });
    },
  );

  await page.goto('/');
  await ui.waitForStatus('Offline');
  const alert = page.getByRole('alert').filter({ hasText: 'live connection address is not valid' });
  await alert.waitFor();
  // Read again while it stays broken: a fixed configuration would be picked up.
  await rereadTwice;
  assert.equal(await ui.status.getAttribute('data-state'), 'offline');

  // The API stops answering: the page is still offline, but no longer blames the address.
  mode = 'unreachable';
  await alert.waitFor({ state: 'detached', timeout: 45_000 });
  assert.equal(await ui.status.getAttribute('data-state'), 'offline');

  mode = 'right';
  await ui.waitForStatus('Live', 45_000);
  await alert.waitFor({ state: 'detached' });
  await ui.waitForPriceChanges(1);
  assert.deepEqual(errors, []);
  await context.close();
});
