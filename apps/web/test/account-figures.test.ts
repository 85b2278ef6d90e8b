/**
 * The account's figures: the portfolio never goes back to an older version, whichever way it
 * arrives (a live event, or a REST reload whose answer comes after a newer one: two reloads
 * overlap when a reconnect and a resync come together), and money available is never shown
 * above what it is.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Portfolio } from '../src/lib/api.ts';
import { formatAvailableUsd, formatUsd } from '../src/lib/money.ts';
import { newerPortfolio } from '../src/lib/use-account.ts';

const portfolio = (version: number | null, usd: string): Portfolio => ({
  balances: [{ asset: 'USD', available: usd, locked: '0' }],
  positions: [],
  version,
});

test('an older version is ignored, a newer or unversioned one is taken', () => {
  const shown = portfolio(6, '9000');
  assert.equal(newerPortfolio(shown, portfolio(5, '9500')), shown, 'an older answer that came last');
  const later = portfolio(7, '8500');
  assert.equal(newerPortfolio(shown, later), later);
  const same = portfolio(6, '9000');
  assert.equal(newerPortfolio(shown, same), same);
  const unversioned = portfolio(null, '9100');
  assert.equal(newerPortfolio(shown, unversioned), unversioned, 'nothing to compare: taken');
  const first = portfolio(3, '10000');
  assert.equal(newerPortfolio(null, first), first);
});

test('available USD is cut to the cent, never rounded up to a cent that is not there', () => {
  // A balance left by fees: rounded half up it would read 9,768.55, and an order for that
  // much would be refused for insufficient funds.
  assert.equal(formatAvailableUsd('9768.54855'), '9,768.54');
  assert.equal(formatAvailableUsd('9768.549999999999999999'), '9,768.54');
  assert.equal(formatAvailableUsd('10000'), '10,000.00');
  assert.equal(formatAvailableUsd('0.009'), '0.00');
  assert.equal(formatUsd('9768.54855'), '9,768.55', 'other sums still round half up');
});
