export { freePort } from './free-port.ts';
export { createTestDatabase } from './postgres.ts';
export { RedisServer } from './redis-server.ts';
export { TestClient } from './test-client.ts';
export { TradewireProcess, type ReadyInfo } from './tradewire-process.ts';
export { nextValue, waitFor } from './wait-for.ts';
