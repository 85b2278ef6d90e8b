import { randomBytes } from 'node:crypto';
import Big from 'big.js';
import type { Locator, Page } from 'playwright-core';

/** A username the API accepts (3–32 of a-z0-9_), unique per call. */
export const uniqueUsername = (prefix = 'u') => `${prefix}_${randomBytes(5).toString('hex')}`;
export const PASSWORD = 'correct horse battery';

/**
 * How the page must show `available` USD (a decimal string of the API), worked out here rather
 * than by the page's own formatter: cut to the cent (never a cent that is not there), grouped.
 */
export function availableUsdText(available: string): string {
  const [whole, cents] = new Big(available).round(2, Big.roundDown).toFixed(2).split('.');
  return `${whole!.replace(/\B(?=(\d{3})+(?!\d))/g, ',')}.${cents}`;
}

/**
 * The trading page as a user sees it, through the accessible names the page promises
 * (labels, button names, region names, the status role), plus the data-testids of figures.
 */
export class TradingPage {
  constructor(readonly page: Page) {}

  region(name: 'Price' | 'Orders' | 'Portfolio'): Locator {
    return this.page.getByRole('region', { name, exact: true });
  }
  get status(): Locator {
    return this.page.getByRole('status');
  }
  get price(): Locator {
    return this.region('Price').getByTestId('price');
  }
  get chart(): Locator {
    return this.region('Price').getByTestId('price-chart');
  }
  figure(
    testId: 'usd-available' | 'total-equity' | `${'sol' | 'btc' | 'eth'}-${'size' | 'avg-entry' | 'pnl'}`,
  ): Locator {
    return this.region('Portfolio').getByTestId(testId);
  }
  get market(): Locator {
    return this.page.getByLabel('Market', { exact: true });
  }
  interval(name: '1 second' | '1 minute' | '1 hour'): Locator {
    return this.page.getByRole('radio', { name, exact: true });
  }
  get buy(): Locator {
    return this.page.getByRole('button', { name: 'Buy', exact: true });
  }
  get sell(): Locator {
    return this.page.getByRole('button', { name: 'Sell', exact: true });
  }

  /** Chooses a market and waits until the price, the chart and the ticket show it. */
  async chooseMarket(symbol: string): Promise<void> {
    await this.market.selectOption(symbol);
    await this.region('Price').locator(`[data-testid="price"][data-symbol="${symbol}"]`).waitFor();
    await this.region('Price').locator(`[data-testid="price-chart"][data-symbol="${symbol}"]`).waitFor();
  }
  orderRows(): Locator {
    return this.region('Orders').locator('tr[data-order-id]');
  }
  orderRow(orderId: number): Locator {
    return this.region('Orders').locator(`tr[data-order-id="${orderId}"]`);
  }

  async open(): Promise<void> {
    await this.page.goto('/');
    await this.waitForStatus('Live');
  }

  async waitForStatus(text: 'Live' | 'Reconnecting' | 'Offline', timeout = 15_000): Promise<void> {
    await this.page.getByRole('status').filter({ hasText: text }).waitFor({ timeout });
  }

  async signUp(username: string, password = PASSWORD): Promise<void> {
    await this.page.getByLabel('Username').fill(username);
    await this.page.getByLabel('Password').fill(password);
    await this.page.getByRole('button', { name: 'Sign up', exact: true }).click();
    await this.page.getByRole('button', { name: 'Log out', exact: true }).waitFor();
    // Logged in means the account is loaded: the portfolio shows its figures.
    await this.figure('usd-available').waitFor();
  }

  async logIn(username: string, password = PASSWORD): Promise<void> {
    await this.page.getByLabel('Username').fill(username);
    await this.page.getByLabel('Password').fill(password);
    await this.page.getByRole('button', { name: 'Log in', exact: true }).click();
    await this.page.getByRole('button', { name: 'Log out', exact: true }).waitFor();
    await this.figure('usd-available').waitFor();
  }

  /** The session token the page keeps for the tab, for checking against the API directly. */
  async token(): Promise<string> {
    const token = await this.page.evaluate(() => {
      const raw = sessionStorage.getItem('tradewire.session');
      return raw ? ((JSON.parse(raw) as { token?: string }).token ?? null) : null;
    });
    if (!token) throw new Error('the page keeps no session token');
    return token;
  }

  /** Enters a size, clicks Buy or Sell, and returns the id of the order row that appears. */
  async placeOrder(side: 'Buy' | 'Sell', size: string, expected: 'filled' | 'rejected'): Promise<number> {
    const before = new Set(
      await this.orderRows().evaluateAll((rows) => rows.map((r) => r.getAttribute('data-order-id'))),
    );
    await this.page.getByLabel('Size').fill(size);
    await this.page.getByRole('button', { name: side, exact: true }).click();
    const handle = await this.page.waitForFunction(
      ({ known, status }) => {
        const rows = [...document.querySelectorAll('[aria-label="Orders"] tr[data-order-id]')];
        const row = rows.find((r) => !known.includes(r.getAttribute('data-order-id')));
        return row && row.getAttribute('data-status') === status ? Number(row.getAttribute('data-order-id')) : null;
      },
      { known: [...before], status: expected },
    );
    // The row can come first (the order's event on the socket beats the HTTP answer): the
    // ticket's result is this order's once it no longer says it is sending.
    await this.page.waitForFunction(() => {
      const text = document.querySelector('[data-testid="order-result"]')?.textContent ?? '';
      return text !== '' && text !== 'Sending order…';
    });
    return (await handle.jsonValue()) as number;
  }

  /** Resolves once the price shown has changed `times` times (distinct consecutive values). */
  async waitForPriceChanges(times: number, timeout = 15_000): Promise<string[]> {
    const handle = await this.page.waitForFunction(
      (n) => {
        const w = window as unknown as { __priceSeen?: string[] };
        const text = document.querySelector('[aria-label="Price"] [data-testid="price"]')?.textContent ?? '';
        const seen = (w.__priceSeen ??= []);
        if (/\d/.test(text) && seen[seen.length - 1] !== text) seen.push(text);
        if (seen.length > n) {
          w.__priceSeen = [];
          return seen;
        }
        return null;
      },
      times,
      { polling: 20, timeout },
    );
    return (await handle.jsonValue()) as string[];
  }

  /** How many candles the chart draws. */
  async chartCandles(): Promise<number> {
    return Number(await this.chart.getAttribute('data-candles'));
  }

  /** Resolves once the chart has merged the server's history in and draws at least `min` candles. */
  async waitForChart(min = 1, timeout = 15_000): Promise<{ candles: number; first: number; last: number }> {
    const handle = await this.page.waitForFunction(
      (n) => {
        const el = document.querySelector('[aria-label="Price"] [data-testid="price-chart"]');
        const candles = Number(el?.getAttribute('data-candles'));
        if (el?.getAttribute('data-loaded') !== 'true' || !(candles >= n)) return null;
        return { candles, first: Number(el.getAttribute('data-first')), last: Number(el.getAttribute('data-last')) };
      },
      min,
      { polling: 50, timeout },
    );
    return (await handle.jsonValue()) as { candles: number; first: number; last: number };
  }
}
