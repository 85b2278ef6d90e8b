import type { EventKind, EventOf } from '@repo/events';
import { redisKeys } from '@repo/redis';
import { EVENT_CHANNELS } from './event-channels.ts';

/** The kinds that belong to one user: a gateway needs them only while it holds that user. */
export type PrivateEventKind = Exclude<EventKind, 'price'>;
export const PRIVATE_EVENT_KINDS = [
  'order_filled',
  'order_rejected',
  'portfolio',
  'session_revoked',
] as const satisfies readonly PrivateEventKind[];

/** `REDIS_PARTITIONS` default: enough to spread a cluster's shards, few enough to subscribe to all. */
export const DEFAULT_PARTITIONS = 16;
/** Most partitions a layout may have: a gateway holding users of all of them keeps 4 channels each. */
export const MAX_PARTITIONS = 1024;

/**
 * Which broker channel carries which event: the one naming table publishers and gateways share.
 *
 * - `design`: the design's channels exactly (`trading:events:order:filled`, …), one per kind;
 *   every gateway receives every event. The in-process and the one-Redis modes use it.
 * - `partitioned`: Redis Cluster mode. Each private channel is split by user,
 *   `<design channel>:{<userId mod partitions>}`, and prices by symbol,
 *   `trading:events:price:update:{<SYMBOL>}`, so the traffic spreads over the shards and a
 *   gateway subscribes only to the partitions of the users it holds.
 */
export interface ChannelLayout {
  readonly kind: 'design' | 'partitioned';
  /** User partitions: 1 in the design layout (its channels are "partition 0"). */
  readonly partitions: number;
  /** The partition a user's private events go to. */
  partitionOf(userId: number): number;
  /** The channel carrying `kind` events of the users in `partition`. */
  privateChannel(kind: PrivateEventKind, partition: number): string;
  /** The channel carrying the prices of `symbol`. */
  priceChannel(symbol: string): string;
  /** The channels carrying the prices of `symbols`, each once (the design: its one price channel). */
  priceChannels(symbols: readonly string[]): readonly string[];
  /**
   * The channels `event` is published on: one, except a session revocation that does not name
   * its user in the partitioned layout, which goes to every partition.
   */
  channelsFor<K extends EventKind>(kind: K, event: EventOf<K>): readonly string[];
}

const DESIGN_ROUTES = Object.fromEntries(
  Object.entries(EVENT_CHANNELS).map(([kind, channel]) => [kind, Object.freeze([channel])]),
) as Record<EventKind, readonly string[]>;

/** The design's channel names, one per kind, for every user and symbol. */
export const DESIGN_CHANNEL_LAYOUT: ChannelLayout = Object.freeze({
  kind: 'design' as const,
  partitions: 1,
  partitionOf: () => 0,
  privateChannel: (kind: PrivateEventKind) => EVENT_CHANNELS[kind],
  priceChannel: () => EVENT_CHANNELS.price,
  priceChannels: () => DESIGN_ROUTES.price,
  channelsFor: (kind: EventKind) => DESIGN_ROUTES[kind],
});

/**
 * The Redis Cluster layout with `partitions` user partitions (an integer in 1…`MAX_PARTITIONS`;
 * `RangeError` otherwise). Every process of one deployment must use the same count: a publisher
 * and a gateway that disagree put a user's events on different channels.
 */
export function partitionedChannelLayout(partitions: number = DEFAULT_PARTITIONS): ChannelLayout {
  if (!Number.isInteger(partitions) || partitions < 1 || partitions > MAX_PARTITIONS) {
    throw new RangeError(`partitions must be an integer from 1 to ${MAX_PARTITIONS}, got ${partitions}`);
  }
  const names = new Map<PrivateEventKind, string[]>(
    PRIVATE_EVENT_KINDS.map((kind) => [
      kind,
      Array.from({ length: partitions }, (_, p) => redisKeys.PARTITIONED_CHANNELS.ofPartition(EVENT_CHANNELS[kind], p)),
    ]),
  );
  const privateChannel = (kind: PrivateEventKind, partition: number): string => {
    const name = names.get(kind)?.[partition];
    if (name === undefined) throw new RangeError(`no partition ${partition} in a layout of ${partitions}`);
    return name;
  };
  const partitionOf = (userId: number) => userId % partitions;
  return Object.freeze({
    kind: 'partitioned' as const,
    partitions,
    partitionOf,
    privateChannel,
    priceChannel: (symbol: string) => redisKeys.PARTITIONED_CHANNELS.priceOf(symbol),
    priceChannels: (symbols: readonly string[]) => [
      ...new Set(symbols.map((symbol) => redisKeys.PARTITIONED_CHANNELS.priceOf(symbol))),
    ],
    channelsFor<K extends EventKind>(kind: K, event: EventOf<K>): readonly string[] {
      if (kind === 'price') return [redisKeys.PARTITIONED_CHANNELS.priceOf((event as EventOf<'price'>).symbol)];
      const userId = (event as { userId?: number }).userId;
      if (userId === undefined) return names.get(kind) ?? [];
      return [privateChannel(kind, partitionOf(userId))];
    },
  });
}
