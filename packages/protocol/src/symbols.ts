/**
 * The `symbols` field of `subscribe prices`: which symbols a socket wants. Both sides read it
 * with the same function: the gateway to validate a client frame, the SDK to fail a bad set
 * before it is sent.
 */

/**
 * A symbol: 1-16 characters of A-Z and 0-9. The same rule as the `symbol` schema of
 * `@repo/events` (a test holds them equal), written as a plain pattern so that this package
 * and the SDK carry no zod into the browser.
 */
export const SYMBOL_PATTERN = /^[A-Z0-9]{1,16}$/;

/**
 * Most entries one `symbols` list may have (before duplicates are removed). Generous for a
 * trading page (the configured markets are a handful) and small enough that validating a
 * hostile list costs nothing.
 */
export const MAX_SUBSCRIBE_SYMBOLS = 100;

export type SymbolListParse = { ok: true; symbols: string[] } | { ok: false; message: string };

/**
 * Reads a `symbols` value: a non-empty array of at most `MAX_SUBSCRIBE_SYMBOLS` symbols;
 * duplicates are dropped, the first occurrence keeps its place. Whether each symbol is served
 * is the gateway's question (`unknown_symbol`), not this one. Never throws.
 *
 * An empty list is refused rather than read as "none" or "all": omitting the field already
 * means every symbol and `unsubscribe` means none, so `[]` is almost always a client bug (a
 * filter that matched nothing) that should be heard, not silently honoured.
 */
export function parseSymbolList(value: unknown): SymbolListParse {
  if (!Array.isArray(value)) return { ok: false, message: '"symbols" must be an array of symbols such as ["BTC"]' };
  if (value.length === 0) {
    return {
      ok: false,
      message: '"symbols" must name at least one symbol; omit it for every symbol, unsubscribe for none',
    };
  }
  if (value.length > MAX_SUBSCRIBE_SYMBOLS) {
    return { ok: false, message: `"symbols" may name at most ${MAX_SUBSCRIBE_SYMBOLS} symbols` };
  }
  const symbols = new Set<string>();
  for (const item of value as unknown[]) {
    if (typeof item !== 'string' || !SYMBOL_PATTERN.test(item)) {
      return { ok: false, message: '"symbols" entries must be 1-16 characters of A-Z and 0-9, such as "BTC"' };
    }
    symbols.add(item);
  }
  return { ok: true, symbols: [...symbols] };
}
