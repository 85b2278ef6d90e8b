export { redisKeys, type ChannelName } from './keys.ts';
export { createRedisClient, type RedisClient, type RedisClientOptions } from './client.ts';
