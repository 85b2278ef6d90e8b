import type { PriceStore, PriceUpdateEvent } from '@repo/events';
import type { Logger } from '@repo/log';

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
  const lastRead = new Map<string, PriceUpdateEvent>();

  async function read(symbols: readonly string[]): Promise<PriceUpdateEvent[]> {
    try {
      const prices = await withDeadline(store.getPrices(symbols), timeoutMs);
      for (const price of prices) lastRead.set(price.symbol, price);
      return prices;
    } catch (err) {
      options.logger.debug({ err: (err as Error).message }, 'price store unavailable, using last read prices');
      return symbols.map((s) => lastRead.get(s)).filter((p): p is PriceUpdateEvent => p !== undefined);
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

class DeadlineError extends Error {
  readonly code = 'deadline_exceeded';
}

function withDeadline<T>(promise: Promise<T>, ms: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new DeadlineError(`no answer within ${ms} ms`)), ms);
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (err: unknown) => {
        clearTimeout(timer);
        reject(err instanceof Error ? err : new Error(String(err)));
      },
    );
  });
}
