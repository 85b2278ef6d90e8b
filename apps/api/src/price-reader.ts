import type { PriceStore } from '@repo/broker';
import type { PriceUpdateEvent } from '@repo/events';
import type { Logger } from '@repo/log';
import { withTimeout } from '@repo/retry';

export interface PriceReader {
  /** The latest known prices of `symbols`, in the order asked (unknown ones left out). */
  getPrices(symbols: readonly string[]): Promise<PriceUpdateEvent[]>;
  /** The latest known price of `symbol`, or null. */
  getPrice(symbol: string): Promise<PriceUpdateEvent | null>;
}

/**
 * Reads prices from the price store with a deadline, so that an order never waits on a slow
 * or dead broker. While the store cannot answer, the last price this process read is used:
 * the price worker cannot move the price in the store either while the broker is down. When
 * the store answers that a price is unknown (a Redis that restarted empty), it is unknown.
 */
export function createPriceReader(store: PriceStore, options: { timeoutMs?: number; logger: Logger }): PriceReader {
  const timeoutMs = options.timeoutMs ?? 250;
  /** Per symbol, the latest answer of the store (null: unknown) and which read it came from. */
  const lastRead = new Map<string, { price: PriceUpdateEvent | null; read: number }>();
  let reads = 0;

  async function read(symbols: readonly string[]): Promise<PriceUpdateEvent[]> {
    const readNo = ++reads;
    try {
      const prices = await withTimeout(store.getPrices(symbols), timeoutMs, 'price store read');
      const answered = new Map(prices.map((price) => [price.symbol, price]));
      for (const symbol of symbols) {
        // Reads overlap: one begun earlier that answers later holds an older price.
        if ((lastRead.get(symbol)?.read ?? 0) > readNo) continue;
        lastRead.set(symbol, { price: answered.get(symbol) ?? null, read: readNo });
      }
      return prices;
    } catch (err) {
      options.logger.debug({ err: (err as Error).message }, 'price store unavailable, using last read prices');
      return symbols.map((s) => lastRead.get(s)?.price).filter((p): p is PriceUpdateEvent => p != null);
    }
  }

  return {
    getPrices: read,
    async getPrice(symbol) {
      const [price] = await read([symbol]);
      return price ?? null;
    },
  };
}
