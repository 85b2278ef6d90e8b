import { canonical, dec, roundCharge, roundMoney } from './decimal.ts';

/**
 * The paper-trading rules, as a pure function over exact decimals. The database layer calls
 * it inside the order transaction with the locked balance and position.
 *
 * - cost = executedPrice × size; fee = cost × feeRate, charged in the quote asset (USD).
 * - A buy needs cost + fee ≤ available quote; it adds `size` to the position.
 * - A sell needs size ≤ position; it credits cost − fee (the fee comes out of the proceeds).
 * - avgEntryPrice is the size-weighted average of the buy prices; sells leave it unchanged and
 *   a position sold to zero resets it to 0. Fees do not enter it.
 * - Amounts are kept to 18 decimals (MONEY_SCALE), rounded in the house's favour: a buy's cost
 *   and every fee up, a sell's proceeds down (a price may carry 18 decimals and a size 9, so a
 *   cost may need it; the fee of a small rate usually does). The average entry price, which
 *   moves no money, is rounded half-up.
 */

export type Side = 'buy' | 'sell';
export type RejectReason = 'insufficient_funds' | 'insufficient_position' | 'no_price' | 'price_stale';

export interface MarketOrderInput {
  side: Side;
  /** Canonical positive size. */
  size: string;
  /** Latest price, or null when none is known. */
  price: string | null;
  /** The latest price is older than the caller accepts: the order is rejected with `price_stale`. */
  priceStale?: boolean;
  /** Fee rate, e.g. "0.0001". */
  feeRate: string;
  /** The user's available quote balance before the order. */
  quoteAvailable: string;
  /** The user's position in the base asset before the order. */
  position: { size: string; avgEntryPrice: string };
}

export type MarketOrderOutcome =
  | {
      status: 'filled';
      executedPrice: string;
      executedSize: string;
      fee: string;
      quoteAvailable: string;
      position: { size: string; avgEntryPrice: string };
    }
  | { status: 'rejected'; reason: RejectReason };

export function executeMarketOrder(input: MarketOrderInput): MarketOrderOutcome {
  if (input.price === null) return { status: 'rejected', reason: 'no_price' };
  // Trading at a frozen price while the market moves would hand out free money or losses.
  if (input.priceStale) return { status: 'rejected', reason: 'price_stale' };
  const price = dec(input.price);
  const size = dec(input.size);
  const cost = roundCharge(price.times(size), input.side === 'buy' ? 'up' : 'down');
  const fee = roundCharge(cost.times(input.feeRate), 'up');
  const available = dec(input.quoteAvailable);
  const held = dec(input.position.size);

  if (input.side === 'buy') {
    const total = cost.plus(fee);
    if (total.gt(available)) return { status: 'rejected', reason: 'insufficient_funds' };
    const newSize = held.plus(size);
    const avg = roundMoney(held.times(input.position.avgEntryPrice).plus(cost).div(newSize));
    return {
      status: 'filled',
      executedPrice: canonical(price),
      executedSize: canonical(size),
      fee: canonical(fee),
      quoteAvailable: canonical(available.minus(total)),
      position: { size: canonical(newSize), avgEntryPrice: canonical(avg) },
    };
  }

  if (size.gt(held)) return { status: 'rejected', reason: 'insufficient_position' };
  const newSize = held.minus(size);
  return {
    status: 'filled',
    executedPrice: canonical(price),
    executedSize: canonical(size),
    fee: canonical(fee),
    quoteAvailable: canonical(available.plus(cost).minus(fee)),
    position: {
      size: canonical(newSize),
      avgEntryPrice: newSize.eq(0) ? '0' : canonical(input.position.avgEntryPrice),
    },
  };
}
