import assert from 'node:assert/strict';
import { chmod, mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { openDatabase } from '../src/index.ts';
import { createTestDatabase } from '@repo/test-support';
import { newUser, order } from './database-suite.ts';

describe('openDatabase', () => {
  it('keeps PGlite data in dataDir across restarts and migrates only once', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tradewire-db-'));
    try {
      let db = await openDatabase({ dataDir: join(dir, 'data') });
      const userId = await newUser(db);
      await db.orders.place(order(userId, 'buy', '2', '50'));
      await db.close();
      db = await openDatabase({ dataDir: join(dir, 'data') });
      try {
        assert.deepEqual((await db.portfolio.get(userId))?.positions, [
          { asset: 'SOL', size: '2', avgEntryPrice: '50' },
        ]);
        assert.equal((await db.orders.list(userId, { limit: 10 })).orders.length, 1);
      } finally {
        await db.close();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('creates the embedded database directory readable by its owner only (0700), and narrows a wider one', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tradewire-db-'));
    const previous = process.umask(0o022);
    try {
      const dataDir = join(dir, 'nested', 'data');
      let db = await openDatabase({ dataDir });
      await db.close();
      assert.equal((await stat(dataDir)).mode & 0o777, 0o700);
      await chmod(dataDir, 0o755);
      db = await openDatabase({ dataDir });
      await db.close();
      assert.equal((await stat(dataDir)).mode & 0o777, 0o700);
    } finally {
      process.umask(previous);
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('migrates a fresh PostgreSQL database safely from several processes at once', async () => {
    const temp = await createTestDatabase();
    try {
      const dbs = await Promise.all([1, 2, 3].map(() => openDatabase({ url: temp.url, poolSize: 2 })));
      await Promise.all(dbs.map((db) => db.ping()));
      await Promise.all(dbs.map((db) => db.close()));
    } finally {
      await temp.drop();
    }
  });

  it('fails with a clear error when PostgreSQL is unreachable', async () => {
    await assert.rejects(openDatabase({ url: 'postgres://postgres@127.0.0.1:1/none' }), { code: 'database_error' });
  });
});
