export { redisKeys, type ChannelName } from './keys.ts';
export {
  closeRedisClient,
  createRedisClient,
  createRedisClusterClient,
  parseNodeAddress,
  type RedisClient,
  type RedisClusterClient,
  type RedisClientOptions,
} from './client.ts';
// The driver's error reply, for callers that tell a refused command from a lost connection.
export { ErrorReply } from 'redis';
