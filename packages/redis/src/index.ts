export { redisKeys, type ChannelName } from './keys.ts';
export { createRedisClient, reconnectDelay, type RedisClient, type RedisClientOptions } from './client.ts';
