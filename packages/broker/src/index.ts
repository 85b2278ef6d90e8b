export { BrokerUnavailableError, type Broker, type Unsubscribe } from './broker.ts';
export { MemoryBroker } from './memory-broker.ts';
export { RedisBroker, connectRedisBroker } from './redis-broker.ts';
export { EVENT_CHANNELS } from './event-channels.ts';
export { createEventPublisher, type EventPublisher } from './event-publisher.ts';
export { createPriceStore, type PriceStore } from './price-store.ts';
