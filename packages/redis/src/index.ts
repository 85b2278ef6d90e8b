export { redisKeys, type ChannelName } from './keys.ts';
export {
  createRedisClient,
  createRedisClusterClient,
  parseNodeAddress,
  type RedisClient,
  type RedisClusterClient,
  type RedisClientOptions,
} from './client.ts';
