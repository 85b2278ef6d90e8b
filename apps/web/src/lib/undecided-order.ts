/**
 * The last order whose fate is unknown (no answer came back, or only a server error) and its
 * Idempotency-Key, kept for the tab (sessionStorage) so that placing the same order again,
 * after a market switch remounted the ticket or a reload, sends the same key: the server then
 * executes it at most once. Tied to the session that placed it: another user never reuses it.
 *
 * The key is kept only while the fate is unknown. Once the order shows up in the user's orders
 * (over the socket or a REST load) its fate is known, and the same order placed again is a new
 * order the user wants, not a retry: the server would answer it with the first one's result for
 * 24 hours and execute nothing.
 */
import { canonicalDecimal, compareDecimal } from './money.ts';

const KEY = 'tradewire.undecided-order';

/** What the page sent: the order is one of these when all three agree. */
export interface OrderInput {
  symbol: string;
  side: 'buy' | 'sell';
  size: string;
}

/** An order as the user's order list knows it (`OrderView` has these fields). */
export interface ListedOrder {
  orderId: number;
  seq: number | null;
  symbol: string;
  side: 'buy' | 'sell' | null;
  size: string | null;
}

interface Undecided {
  token: string;
  key: string;
  order: string;
  /**
   * The user's latest order `seq` the page knew when the order was sent: the order, if it was
   * executed, has a higher one. Null when the page did not know it, and then only a definite
   * answer to the order frees its key.
   */
  afterSeq: number | null;
}

function read(storage: Storage): Undecided | null {
  try {
    const v = JSON.parse(storage.getItem(KEY) ?? 'null') as Partial<Undecided> | null;
    if (v && typeof v.token === 'string' && typeof v.key === 'string' && typeof v.order === 'string') {
      const afterSeq = typeof v.afterSeq === 'number' && Number.isSafeInteger(v.afterSeq) ? v.afterSeq : null;
      return { token: v.token, key: v.key, order: v.order, afterSeq };
    }
  } catch {
    // A damaged entry is as good as none.
  }
  return null;
}

function inputOf(order: string): OrderInput | null {
  try {
    const v = JSON.parse(order) as Partial<OrderInput> | null;
    if (v && typeof v.symbol === 'string' && (v.side === 'buy' || v.side === 'sell') && typeof v.size === 'string') {
      return { symbol: v.symbol, side: v.side, size: v.size };
    }
  } catch {
    // Not an order we wrote: nothing in the list can be it.
  }
  return null;
}

/**
 * A canonical description of an order, the form `keyForOrder` and `rememberUndecided` take.
 * The size is in its canonical decimal form: "0.50" and "0.5" are one order (the server hashes
 * them alike), and a retry typed differently must reuse the key or it could execute twice.
 */
export function describeOrder(input: OrderInput): string {
  return JSON.stringify({ symbol: input.symbol, side: input.side, size: canonicalDecimal(input.size) });
}

function sameOrder(a: string, b: string): boolean {
  if (a === b) return true;
  const x = inputOf(a);
  const y = inputOf(b);
  // An entry kept by an earlier version of the page holds the size as typed.
  return (
    x !== null &&
    y !== null &&
    x.symbol === y.symbol &&
    x.side === y.side &&
    canonicalDecimal(x.size) === canonicalDecimal(y.size)
  );
}

/** The key to send for `order` (a canonical description of it): the kept one when it is the same order. */
export function keyForOrder(token: string, order: string, fresh: () => string, storage = sessionStorage): string {
  const kept = read(storage);
  return kept && kept.token === token && sameOrder(kept.order, order) ? kept.key : fresh();
}

/** `order` went out under `key` after the user's order `afterSeq`, and its fate is unknown. */
export function rememberUndecided(
  token: string,
  key: string,
  order: string,
  afterSeq: number | null,
  storage = sessionStorage,
): void {
  storage.setItem(KEY, JSON.stringify({ token, key, order, afterSeq } satisfies Undecided));
}

/** A definite answer came for the session's order: its key is free. */
export function forgetUndecided(storage = sessionStorage): void {
  storage.removeItem(KEY);
}

/**
 * Looks for the kept order of `token` among the user's `orders`: an order of the same symbol,
 * side and size (as a number) placed after it was sent. When one is there, the fate is known:
 * the key is forgotten and that order returned. Otherwise null, and the key stays.
 *
 * The order is recognised by what it is, since the list does not carry keys: an identical
 * order placed in another tab meanwhile would be taken for it.
 */
export function settleUndecided<T extends ListedOrder>(
  token: string,
  orders: readonly T[],
  storage = sessionStorage,
): T | null {
  const kept = read(storage);
  if (!kept || kept.token !== token || kept.afterSeq === null) return null;
  const input = inputOf(kept.order);
  if (!input) return null;
  const afterSeq = kept.afterSeq;
  const found = orders.find(
    (o) =>
      o.seq !== null &&
      o.seq > afterSeq &&
      o.symbol === input.symbol &&
      o.side === input.side &&
      o.size !== null &&
      compareDecimal(o.size, input.size) === 0,
  );
  if (!found) return null;
  forgetUndecided(storage);
  return found;
}
