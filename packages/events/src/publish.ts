import type { Broker } from '@repo/broker';
import { redisKeys } from '@repo/redis';
import { EventValidationError } from './errors.ts';
import { EVENT_KINDS, type EventKind, type EventOf } from './kinds.ts';
import type {
  OrderFilledEvent,
  OrderRejectedEvent,
  PortfolioUpdateEvent,
  PriceUpdateEvent,
  WithOptionalTimestamp,
} from './types.ts';

export interface EventPublisher {
  /** Publishes `{symbol, price, timestamp}` on `trading:events:price:update`. */
  publishPriceUpdate(symbol: string, price: string, timestamp?: string): Promise<PriceUpdateEvent>;
  publishOrderFilled(event: WithOptionalTimestamp<OrderFilledEvent>): Promise<OrderFilledEvent>;
  publishOrderRejected(event: WithOptionalTimestamp<OrderRejectedEvent>): Promise<OrderRejectedEvent>;
  /** Publishes the portfolio and keeps it as the user's latest, for the gateway's snapshot. */
  publishPortfolioUpdate(event: WithOptionalTimestamp<PortfolioUpdateEvent>): Promise<PortfolioUpdateEvent>;
}

/**
 * Validates `input` against the kind's schema, filling `timestamp` with now when missing.
 * Throws `EventValidationError` (and so publishes nothing) when it does not fit.
 */
export function validateEvent<K extends EventKind>(
  kind: K,
  input: unknown,
  now: () => Date = () => new Date(),
): EventOf<K> {
  const withTimestamp =
    input &&
    typeof input === 'object' &&
    !Array.isArray(input) &&
    (input as { timestamp?: unknown }).timestamp === undefined
      ? { ...(input as object), timestamp: now().toISOString() }
      : input;
  const parsed = EVENT_KINDS[kind].schema.safeParse(withTimestamp);
  if (!parsed.success) {
    throw new EventValidationError(
      kind,
      parsed.error.issues.map((i) => ({ path: i.path.join('.'), message: i.message })),
    );
  }
  return parsed.data as EventOf<K>;
}

/** Key of a user's latest portfolio in the latest-value store. */
export const portfolioKey = (userId: number) => `trading:portfolio:${userId}`;

/**
 * The typed `publish*()` functions of the design, bound to `broker`. No client is created on
 * import: whoever owns the broker (an entry point, a test) makes the publisher.
 */
export function createEventPublisher(broker: Broker, options: { now?: () => Date } = {}): EventPublisher {
  const now = options.now ?? (() => new Date());
  async function publish<K extends EventKind>(kind: K, input: unknown): Promise<EventOf<K>> {
    const event = validateEvent(kind, input, now);
    await broker.publish(EVENT_KINDS[kind].channel, JSON.stringify(event));
    return event;
  }
  return {
    publishPriceUpdate: (symbol, price, timestamp) => publish('price', { symbol, price, timestamp }),
    publishOrderFilled: (event) => publish('order_filled', event),
    publishOrderRejected: (event) => publish('order_rejected', event),
    publishPortfolioUpdate: async (input) => {
      const event = validateEvent('portfolio', input, now);
      await broker.setLatest(portfolioKey(event.userId), JSON.stringify(event));
      await broker.publish(EVENT_KINDS.portfolio.channel, JSON.stringify(event));
      return event;
    },
  };
}

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
 * PriceUpdateEvent, so a snapshot carries the tick's own timestamp.
 */
export function createPriceStore(broker: Broker, options: { now?: () => Date } = {}): PriceStore {
  const now = options.now ?? (() => new Date());
  const decode = (raw: string | null): PriceUpdateEvent | null => {
    if (raw === null) return null;
    try {
      const parsed = EVENT_KINDS.price.schema.safeParse(JSON.parse(raw));
      return parsed.success ? parsed.data : null;
    } catch {
      return null;
    }
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
