import { decodeEvent, validateEvent, type PriceUpdateEvent } from '@repo/events';
import { redisKeys } from '@repo/redis';
import type { Broker } from './broker.ts';

export interface PriceStore {
  /** Keeps `{symbol, price, timestamp}` as the latest price at `trading:price:<SYMBOL>`. */
  setPrice(symbol: string, price: string, timestamp?: string): Promise<PriceUpdateEvent>;
  /** The latest price of `symbol`, or null when none is known. */
  getPrice(symbol: string): Promise<PriceUpdateEvent | null>;
  /** The latest prices of `symbols` that are known, in the order asked. */
  getPrices(symbols: readonly string[]): Promise<PriceUpdateEvent[]>;
}

/**
 * Latest prices in the broker's latest-value store. The value is the JSON of the
 * PriceUpdateEvent, so a snapshot carries the tick's own timestamp. A stored value that does not
 * decode counts as unknown rather than failing the read.
 */
export function createPriceStore(broker: Broker, options: { now?: () => Date } = {}): PriceStore {
  const now = options.now ?? (() => new Date());
  const decode = (raw: string | null): PriceUpdateEvent | null => {
    if (raw === null) return null;
    const decoded = decodeEvent('price', raw);
    return decoded.ok ? decoded.event : null;
  };
  return {
    async setPrice(symbol, price, timestamp) {
      const event = validateEvent('price', { symbol, price, timestamp }, now);
      await broker.setLatest(redisKeys.price(symbol), JSON.stringify(event));
      return event;
    },
    async getPrice(symbol) {
      return decode(await broker.getLatest(redisKeys.price(symbol)));
    },
    async getPrices(symbols) {
      const raws = await broker.getLatestMany(symbols.map((s) => redisKeys.price(s)));
      return raws.map(decode).filter((e): e is PriceUpdateEvent => e !== null);
    },
  };
}
