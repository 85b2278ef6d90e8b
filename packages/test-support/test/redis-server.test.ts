import assert from 'node:assert/strict';
import { createServer, type AddressInfo } from 'node:net';
import { it } from 'node:test';
import { RedisServer } from '../src/index.ts';

it('refuses a port another process holds rather than hand that process out as the Redis', async () => {
  // Something that accepts connections, as another test's server holding the port would.
  const holder = createServer((socket) => socket.destroy());
  await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve));
  const { port } = holder.address() as AddressInfo;
  try {
    await assert.rejects(RedisServer.start(port), /127\.0\.0\.1:\d+ is held by another process/);
  } finally {
    holder.close();
  }
});
