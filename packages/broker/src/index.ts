export { BrokerCommandError, BrokerUnavailableError, type Broker, type Unsubscribe } from './broker.ts';
export { MemoryBroker } from './memory-broker.ts';
export { RedisBroker, connectRedisBroker } from './redis-broker.ts';
export { RedisClusterBroker, connectRedisClusterBroker } from './redis-cluster-broker.ts';
export { EVENT_CHANNELS } from './event-channels.ts';
export {
  DEFAULT_PARTITIONS,
  DESIGN_CHANNEL_LAYOUT,
  MAX_PARTITIONS,
  PRIVATE_EVENT_KINDS,
  partitionedChannelLayout,
  type ChannelLayout,
  type PrivateEventKind,
} from './channel-layout.ts';
export { LayoutMismatchError, checkLayoutAgreement } from './layout-agreement.ts';
export { createEventPublisher, type EventPublisher } from './event-publisher.ts';
export { createPriceStore, type PriceStore } from './price-store.ts';
