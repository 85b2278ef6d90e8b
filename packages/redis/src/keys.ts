/**
 * Every Redis key and channel name tradewire uses, in one place, so publishers and
 * subscribers can never disagree on a spelling.
 */
export const redisKeys = {
  CHANNELS: {
    priceUpdate: () => 'trading:events:price:update',
    orderFilled: () => 'trading:events:order:filled',
    orderRejected: () => 'trading:events:order:rejected',
    portfolioUpdate: () => 'trading:events:portfolio:update',
    /** Session revocations (logout, expiry), so every gateway node can cut private deliveries. */
    sessionRevoked: () => 'trading:events:session:revoked',
  },
  /** Latest known price of a symbol, e.g. `trading:price:SOL`. */
  price: (symbol: string) => `trading:price:${symbol}`,
  /** A user's latest portfolio event, for the gateway's snapshot, e.g. `trading:portfolio:123`. */
  portfolio: (userId: number) => `trading:portfolio:${userId}`,
  /**
   * Prefix of one rate limit's counters (rate-limiter-flexible appends the counted key), e.g.
   * `trading:ratelimit:perUsername`: shared by every API process on the same Redis.
   */
  rateLimit: (limit: string) => `trading:ratelimit:${limit}`,
} as const;

export type ChannelName = ReturnType<(typeof redisKeys.CHANNELS)[keyof typeof redisKeys.CHANNELS]>;
