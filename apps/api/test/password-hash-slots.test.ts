import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { MemoryBroker } from '@repo/broker';
import { DEFAULT_PASSWORD_HASH, openDatabase, type Database } from '@repo/db';
import { ApiError } from '../src/index.ts';
import { PasswordHashSlots } from '../src/password-hash-slots.ts';
import { makeApi, register, uniqueName } from './support.ts';

/** A hash that finishes when the test says so. */
function heldHash() {
  let finish!: () => void;
  const done = new Promise<string>((resolve) => (finish = () => resolve('hash')));
  let started = false;
  return {
    work: () => {
      started = true;
      return done;
    },
    finish,
    get started() {
      return started;
    },
  };
}

const isRateLimited = (err: unknown) =>
  err instanceof ApiError && err.code === 'rate_limited' && err.headers['Retry-After'] === '1';

describe('password hash slots', () => {
  it('runs at most maxInFlight, queues maxWaiting first come first served, refuses the rest at once', async () => {
    const slots = new PasswordHashSlots({ maxInFlight: 2, maxWaiting: 2, maxWaitMs: 60_000 });
    const hashes = Array.from({ length: 6 }, heldHash);
    const runs = hashes.map((h) => slots.run(h.work));
    await assert.rejects(runs[4]!, isRateLimited);
    await assert.rejects(runs[5]!, isRateLimited);
    assert.deepEqual(
      hashes.map((h) => h.started),
      [true, true, false, false, false, false],
    );
    hashes[1]!.finish();
    await runs[1];
    assert.deepEqual(
      hashes.map((h) => h.started),
      [true, true, true, false, false, false],
      'the first waiter takes the freed slot',
    );
    for (const h of hashes.slice(0, 4)) h.finish();
    await Promise.all(runs.slice(0, 4));
    assert.equal(slots.inFlight, 0);
    assert.equal(slots.peakInFlight, 2);
  });

  it('refuses a waiter that gets no slot within maxWaitMs, and never starts its hash', async () => {
    const slots = new PasswordHashSlots({ maxInFlight: 1, maxWaiting: 1, maxWaitMs: 50 });
    const running = heldHash();
    const waiting = heldHash();
    const first = slots.run(running.work);
    await assert.rejects(slots.run(waiting.work), isRateLimited);
    running.finish();
    await first;
    assert.equal(waiting.started, false);
    assert.equal(slots.inFlight, 0);
  });

  it('rejects bad options with a message naming them', () => {
    assert.throws(() => new PasswordHashSlots({ maxInFlight: 0 }), /maxInFlight/);
    assert.throws(() => new PasswordHashSlots({ maxWaiting: -1 }), /maxWaiting/);
    assert.throws(() => new PasswordHashSlots({ maxWaitMs: 1.5 }), /maxWaitMs/);
  });
});

describe('password hashes under a flood of one-shot logins', () => {
  let db: Database;
  let broker: MemoryBroker;

  before(async () => {
    db = await openDatabase({ dataDir: 'memory://' });
    broker = new MemoryBroker();
  });
  after(async () => {
    await broker?.close();
    await db?.close();
  });

  it('keeps hashes in flight within the cap and answers the excess 429; the honest user logs in', async () => {
    // The production hash cost, so that each hash holds its slot as long as it would in production.
    const api = makeApi(db, broker, {
      passwordHash: DEFAULT_PASSWORD_HASH,
      passwordHashing: { maxInFlight: 2, maxWaiting: 2, maxWaitMs: 60_000 },
    });
    try {
      const honest = await register(api, uniqueName('honest'), 'correct-horse');
      // One unknown-username login from each of 60 addresses: every one far under its own limits.
      const login = (remoteAddress: string, username: string, password: string) =>
        api.app.inject({ method: 'POST', url: '/auth/login', payload: { username, password }, remoteAddress });
      const flood = Array.from({ length: 60 }, (_, i) => login(`198.18.0.${i + 1}`, uniqueName('nobody'), 'whatever1'));
      const during = login('192.0.2.1', honest.username, 'correct-horse');
      const answers = await Promise.all(flood);
      const counts: Record<number, number> = {};
      for (const a of answers) counts[a.statusCode] = (counts[a.statusCode] ?? 0) + 1;
      assert.ok((counts[429] ?? 0) >= 1 && (counts[429] ?? 0) + (counts[401] ?? 0) === 60, JSON.stringify(counts));
      const refused = answers.find((a) => a.statusCode === 429)!;
      assert.equal(refused.json<{ error: { code: string } }>().error.code, 'rate_limited');
      assert.equal(refused.headers['retry-after'], '1');
      // The honest login during the flood is answered either way (a quick 429 at worst), and
      // after it, at once.
      const duringStatus = (await during).statusCode;
      assert.ok([200, 429].includes(duringStatus), String(duringStatus));
      assert.equal((await login('192.0.2.1', honest.username, 'correct-horse')).statusCode, 200);
      assert.ok(api.passwordHashes.peakInFlight <= 2, String(api.passwordHashes.peakInFlight));
      assert.equal(api.passwordHashes.inFlight, 0);
      const metrics = await api.app.inject({ method: 'GET', url: '/metrics' });
      assert.match(
        metrics.body,
        new RegExp(`tradewire_api_password_hashes_refused_total ${counts[429]! + (duringStatus === 429 ? 1 : 0)}\\b`),
      );
    } finally {
      await api.close();
    }
  });

  it("a login refused for want of a hashing slot spends none of the owner's login attempts", async () => {
    const api = makeApi(db, broker, { passwordHashing: { maxInFlight: 1, maxWaiting: 0, maxWaitMs: 60_000 } });
    try {
      const owner = await register(api, uniqueName('owner'), 'correct-horse');
      const login = () =>
        api.app.inject({
          method: 'POST',
          url: '/auth/login',
          payload: { username: owner.username, password: 'correct-horse' },
          remoteAddress: '192.0.2.7',
        });
      // The one slot is busy: every login of the owner is refused before its password is checked,
      // more of them than the strict limit of one username at one address (10) allows.
      const hold = heldHash();
      const holding = api.passwordHashes.run(hold.work);
      for (let i = 0; i < 12; i += 1) {
        const refused = await login();
        assert.equal(refused.statusCode, 429);
        assert.match(refused.json<{ error: { message: string } }>().error.message, /password checks/);
      }
      hold.finish();
      await holding;
      const answer = await login();
      assert.equal(answer.statusCode, 200, answer.body);
    } finally {
      await api.close();
    }
  });
});
