import type { PriceMessage } from '@repo/protocol';

/** The symbols a `prices` handler wants: a set, or null for every symbol. */
export type SymbolFilter = ReadonlySet<string> | null;

/** Whether a handler with `filter` takes ticks of `symbol`. */
export function wants(filter: SymbolFilter, symbol: string): boolean {
  return filter === null || filter.has(symbol);
}

/**
 * What to ask the server for so that every handler gets its symbols: the union of their
 * filters, or null (every symbol) when one of them wants every symbol.
 */
export function unionOf(filters: Iterable<SymbolFilter>): string[] | null {
  const union = new Set<string>();
  for (const filter of filters) {
    if (filter === null) return null;
    for (const symbol of filter) union.add(symbol);
  }
  return [...union];
}

function sameSymbols(a: readonly string[] | null, b: SymbolFilter | undefined): boolean {
  if (a === null || b === null || b === undefined) return a === b;
  return a.length === b.size && a.every((symbol) => b.has(symbol));
}

/**
 * The `prices` subscription of the current socket as the server acknowledged it, and the
 * latest price received on it per symbol.
 *
 * The gateway does not repeat on a re-subscribe what the socket already has: the symbols kept
 * stay live without a new snapshot. So a handler that joins an existing subscription gets the
 * latest price of each of its symbols from here, and the server's snapshot brings only the
 * symbols the new union added.
 */
export class PriceSubscriptionState {
  /** The set in force on the server; undefined while the socket has no `prices` subscription. */
  private server: SymbolFilter | undefined;
  private readonly latest = new Map<string, PriceMessage>();

  /** Whether asking for `symbols` would change nothing on the server. */
  isOnServer(symbols: readonly string[] | null): boolean {
    return sameSymbols(symbols, this.server);
  }

  /**
   * A `subscribed` reply on `prices`: `symbols` is the set now in force (absent: every symbol,
   * which is also what a gateway that knows no `symbols` answers). Returns the set before it.
   */
  acknowledged(symbols: unknown): SymbolFilter | undefined {
    const before = this.server;
    const now: SymbolFilter =
      Array.isArray(symbols) && symbols.every((s) => typeof s === 'string') ? new Set(symbols) : null;
    this.server = now;
    for (const symbol of this.latest.keys()) if (!wants(now, symbol)) this.latest.delete(symbol);
    return before;
  }

  /** A price received on the current socket. */
  received(message: PriceMessage): void {
    // Frames still in flight after an unsubscribe are no position of any subscription.
    if (this.server !== undefined) this.latest.set(message.symbol, message);
  }

  /**
   * The latest prices a handler joining with `filter` will not get from the server: those of
   * the symbols that were already live on the socket (`before`, as `acknowledged` returned it).
   */
  alreadyLive(filter: SymbolFilter, before: SymbolFilter | undefined): PriceMessage[] {
    if (before === undefined) return [];
    const messages: PriceMessage[] = [];
    for (const [symbol, message] of this.latest)
      if (wants(filter, symbol) && wants(before, symbol)) messages.push(message);
    return messages;
  }

  /** The socket is gone, or `prices` was unsubscribed: the next subscription starts afresh. */
  reset(): void {
    this.server = undefined;
    this.latest.clear();
  }
}
