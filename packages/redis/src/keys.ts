/**
 * Every Redis key and channel name tradewire uses, in one place, so publishers and
 * subscribers can never disagree on a spelling.
 */
const CHANNELS = {
  priceUpdate: () => 'trading:events:price:update',
  orderFilled: () => 'trading:events:order:filled',
  orderRejected: () => 'trading:events:order:rejected',
  portfolioUpdate: () => 'trading:events:portfolio:update',
  /** Session revocations (logout, expiry), so every gateway node can cut private deliveries. */
  sessionRevoked: () => 'trading:events:session:revoked',
} as const;

export type ChannelName = ReturnType<(typeof CHANNELS)[keyof typeof CHANNELS]>;

export const redisKeys = {
  CHANNELS,
  /**
   * Redis Cluster mode splits the design's channels so that no shard carries all the traffic.
   * The part in braces is a hash tag: Redis places a channel by it alone, so the four private
   * channels of one partition share a slot (one shard, one SSUBSCRIBE connection per gateway).
   */
  PARTITIONED_CHANNELS: {
    /** One user partition of a design channel, e.g. `trading:events:order:filled:{3}`. */
    ofPartition: (channel: ChannelName, partition: number): string => `${channel}:{${partition}}`,
    /** The price channel of one symbol, e.g. `trading:events:price:update:{SOL}`. */
    priceOf: (symbol: string): string => `${CHANNELS.priceUpdate()}:{${symbol}}`,
  },
  /**
   * The partition count the processes of a Redis Cluster deployment agreed on, kept in the
   * cluster so that one started with another `REDIS_PARTITIONS` refuses to start.
   */
  partitionCount: () => 'trading:layout:partitions',
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
