/**
 * The account's figures: the portfolio never goes back to an older version, whichever way it
 * arrives (a live event, or a REST reload whose answer comes after a newer one: two reloads
 * overlap when a reconnect and a resync come together), and money available is never shown
 * above what it is, and what the server settled (an executed price, a fee) is never rounded.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Portfolio } from '../src/lib/api.ts';
import { estimateOrder, formatAvailableUsd, formatExact, formatPrice, formatUsd } from '../src/lib/money.ts';
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

test('executed prices and fees are shown exactly as the server sent them, never rounded', () => {
  // A Pyth price keeps up to 8 decimals; a 4-decimal one stays 4.
  assert.equal(formatExact('231.45678901'), '231.45678901');
  assert.equal(formatExact('97234.12345678'), '97,234.12345678');
  assert.equal(formatExact('2314.5678'), '2,314.5678');
  // The fee of 1 SOL at 231.45 at a rate of 0.00015: rounded to 6 decimals it read 0.034718.
  assert.equal(formatExact('0.0347175'), '0.0347175');
  assert.equal(formatExact('0.000000000023145679'), '0.000000000023145679', 'the 18 decimals the server keeps');
  assert.equal(formatExact('231.4500'), '231.45', 'no trailing zeros');
  assert.equal(formatExact('1000000'), '1,000,000');
  assert.equal(formatExact('0'), '0');
  assert.equal(formatExact(null), '—');
  assert.equal(formatExact('1e3'), '—', 'not a plain decimal');
});

test('the live price keeps every digit too, padded to 2 decimals', () => {
  assert.equal(formatPrice('231.45678901'), '231.45678901');
  assert.equal(formatPrice('2314.5678'), '2,314.5678');
  assert.equal(formatPrice('81300'), '81,300.00');
  assert.equal(formatPrice('231.5'), '231.50');
  assert.equal(formatPrice('-0.00000001', true), '-0.00000001', 'a change of one tick');
});

test('the estimated fee is rounded up at 18 decimals, as the server charges it', () => {
  // 231.45678901 × 0.000000001 × 0.0001 has 21 decimals.
  const estimate = estimateOrder('231.45678901', '0.000000001', '0.0001');
  assert.equal(estimate?.notional, '0.00000023145678901');
  assert.equal(estimate?.fee, '0.000000000023145679');
  assert.equal(estimateOrder('231.45', '1', '0.00015')?.fee, '0.0347175');
});
