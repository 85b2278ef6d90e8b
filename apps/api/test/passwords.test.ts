import assert from 'node:assert/strict';
import { randomBytes, scryptSync } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { eq } from 'drizzle-orm';
import { MemoryBroker } from '@repo/broker';
import { openDatabase, schema, type Database } from '@repo/db';
import { createTestDatabase } from '@repo/test-support';
import type { Api } from '../src/index.ts';
import { makeApi, uniqueName } from './support.ts';

/**
 * Password hashes at the production cost on a real PostgreSQL database: new ones are argon2id
 * at OWASP's parameters, and a legacy scrypt hash (N = 2^14, as the API stored them before)
 * still logs in and is replaced by an argon2id one at that login.
 */
describe('password hashing', () => {
  let database: Awaited<ReturnType<typeof createTestDatabase>>;
  let db: Database;
  let broker: MemoryBroker;
  let api: Api;

  before(async () => {
    database = await createTestDatabase('tw_passwords');
    db = await openDatabase({ url: database.url });
    broker = new MemoryBroker();
    // The production cost, not the tests' cheap one.
    api = makeApi(db, broker, { passwordHash: {} });
  });
  after(async () => {
    await api?.close();
    await broker?.close();
    await db?.close();
    await database?.drop();
  });

  const storedHash = async (username: string) => {
    const [row] = await db.drizzle
      .select({ hash: schema.users.passwordHash })
      .from(schema.users)
      .where(eq(schema.users.username, username));
    return row!.hash;
  };
  const login = (username: string, password: string) =>
    api.app.inject({ method: 'POST', url: '/auth/login', payload: { username, password } });
  const OWASP = /^\$argon2id\$v=19\$(?=.*m=19456)(?=.*t=2)(?=.*p=1)[mpt=0-9,]+\$/;

  it('stores new passwords as argon2id with OWASP parameters', async () => {
    const username = uniqueName('fresh');
    const response = await api.app.inject({
      method: 'POST',
      url: '/auth/register',
      payload: { username, password: 'password123' },
    });
    assert.equal(response.statusCode, 201);
    assert.match(await storedHash(username), OWASP);
    assert.equal((await login(username, 'password123')).statusCode, 200);
  });

  it('logs a legacy scrypt user in and rehashes on that login only', async () => {
    const username = uniqueName('legacy');
    const salt = randomBytes(16);
    const key = scryptSync('old password 1', salt, 32, { N: 16_384, r: 8, p: 1 });
    const legacy = ['scrypt', 16_384, 8, 1, salt.toString('base64url'), key.toString('base64url')].join('$');
    await db.users.create({ username, passwordHash: legacy, balances: [], positionAssets: [] });

    assert.equal((await login(username, 'wrong password')).statusCode, 401);
    assert.equal(await storedHash(username), legacy, 'a failed login changes nothing');

    assert.equal((await login(username, 'old password 1')).statusCode, 200);
    const rehashed = await storedHash(username);
    assert.match(rehashed, OWASP);

    assert.equal((await login(username, 'old password 1')).statusCode, 200);
    assert.equal(await storedHash(username), rehashed, 'an up-to-date hash is left alone');
    assert.equal((await login(username, 'wrong password')).statusCode, 401);
  });
});
