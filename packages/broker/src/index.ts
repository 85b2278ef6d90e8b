export {
  BrokerClosedError,
  BrokerUnavailableError,
  type Broker,
  type MessageHandler,
  type Unsubscribe,
} from './broker.ts';
export { MemoryBroker } from './memory-broker.ts';
export { RedisBroker, connectRedisBroker, redactUrl, type RedisBrokerOptions } from './redis-broker.ts';
