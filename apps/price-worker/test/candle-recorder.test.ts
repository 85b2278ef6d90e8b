import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createTestDatabase } from '@repo/test-support';
import { CANDLE_WRITER_LOCK_KEY, openDatabase, type Database, type SingleWriter } from '@repo/db';
import { createCandleRecorder, type CandleRecorder } from '../src/index.ts';

const at = (ms: number) => new Date(ms).toISOString();
const T0 = Date.parse('2030-03-01T12:00:00.000Z');
const MINUTE = 60_000;
const HOUR = 3_600_000;

/**
 * A recorder on its own PGlite, two hours after 50 stored 1 s candles of OLD whose retention is
 * an hour: a backlog of 25 delete statements of 2 rows.
 */
async function recorderWithBacklog() {
  const db = await openDatabase({ dataDir: 'memory://' });
  const recorder = createCandleRecorder({ db, retention: { '1s': HOUR }, pruneBatchSize: 2, now: () => T0 + 2 * HOUR });
  const old = (i: number) => ({
    symbol: 'OLD',
    interval: '1s' as const,
    t: T0 + i * 1000,
    o: '1',
    h: '1',
    l: '1',
    c: '1',
  });
  await db.candles.upsert(Array.from({ length: 50 }, (_, i) => old(i)));
  return { db, recorder };
}

describe('candle recorder on PGlite', () => {
  let db: Database;
  before(async () => {
    db = await openDatabase({ dataDir: 'memory://' });
  });
  after(async () => {
    await db?.close();
  });

  it('writes the changed candles at each flush, the open ones included, and the last ones on close', async () => {
    const recorder = createCandleRecorder({ db });
    recorder.record({ symbol: 'SOL', price: '200.00', timestamp: at(T0 + 100) });
    recorder.record({ symbol: 'SOL', price: '201.50', timestamp: at(T0 + 700) });
    recorder.record({ symbol: 'BTC', price: '80000.12345678', timestamp: at(T0 + 800) });
    assert.deepEqual(await db.candles.list('SOL', '1s', { limit: 10 }), [], 'nothing is written per tick');
    assert.deepEqual(await recorder.flush(), { writer: true, written: 6, failed: false });
    assert.deepEqual(await db.candles.list('SOL', '1s', { limit: 10 }), [
      { t: T0, o: '200', h: '201.5', l: '200', c: '201.5' },
    ]);

    // The open candle grows between flushes; the next flush brings the database up to date.
    recorder.record({ symbol: 'SOL', price: '199.25', timestamp: at(T0 + 900) });
    recorder.record({ symbol: 'SOL', price: '200.75', timestamp: at(T0 + 1200) });
    assert.equal((await recorder.flush()).written, 4, 'the two changed 1 s candles, the 1 m and the 1 h');
    assert.deepEqual(await db.candles.list('SOL', '1s', { limit: 10 }), [
      { t: T0, o: '200', h: '201.5', l: '199.25', c: '199.25' },
      { t: T0 + 1000, o: '200.75', h: '200.75', l: '200.75', c: '200.75' },
    ]);
    assert.deepEqual(await db.candles.list('SOL', '1h', { limit: 10 }), [
      { t: T0, o: '200', h: '201.5', l: '199.25', c: '200.75' },
    ]);
    assert.deepEqual(await db.candles.list('BTC', '1m', { limit: 10 }), [
      { t: T0, o: '80000.12345678', h: '80000.12345678', l: '80000.12345678', c: '80000.12345678' },
    ]);
    assert.equal((await recorder.flush()).written, 0, 'nothing changed, nothing written');

    recorder.record({ symbol: 'SOL', price: '202', timestamp: at(T0 + 1300) });
    await recorder.close();
    assert.equal((await db.candles.list('SOL', '1s', { limit: 10 })).at(-1)?.h, '202');
  });

  it('keeps each interval for its retention, deleting in bounded batches until caught up', async () => {
    // A database of its own: the counts below are of every symbol's candles.
    const db = await openDatabase({ dataDir: 'memory://' });
    let now = T0;
    const runs = { count: 0 };
    const recorder = createCandleRecorder({
      db: countingRuns(db, runs),
      retention: { '1s': 10 * MINUTE, '1m': 2 * HOUR, '1h': null },
      pruneBatchSize: 7,
      now: () => now,
    });
    // Fifty 1 s candles, one a minute over 50 minutes, in minutes of their own: 50 of each 1 s and 1 m.
    for (let i = 0; i < 50; i++)
      recorder.record({ symbol: 'ETH', price: `${3000 + i}`, timestamp: at(T0 + i * MINUTE) });
    await recorder.flush();
    const count = async (interval: '1s' | '1m' | '1h') =>
      (await db.candles.list('ETH', interval, { limit: 1000 })).length;
    assert.deepEqual([await count('1s'), await count('1m'), await count('1h')], [50, 50, 1]);

    now = T0 + 50 * MINUTE;
    runs.count = 0;
    // 1 s candles older than 10 minutes: the first 40 (minutes 0..39) go, in batches of 7.
    assert.equal(await recorder.prune(), 40);
    assert.ok(runs.count >= Math.ceil(40 / 7), `${runs.count} statements for 40 rows in batches of 7`);
    assert.deepEqual([await count('1s'), await count('1m'), await count('1h')], [10, 50, 1]);

    now = T0 + 1000 * HOUR;
    assert.equal(await recorder.prune(), 60);
    assert.deepEqual([await count('1s'), await count('1m'), await count('1h')], [0, 0, 1], '1 h candles stay forever');
    await recorder.close();
    await db.close();
  });

  it('works a retention backlog off a few statements per flush, the flushes going on meanwhile', async () => {
    const { db, recorder } = await recorderWithBacklog();
    const left = async () => (await db.candles.list('OLD', '1s', { limit: 100 })).length;
    const written = async () => (await db.candles.list('SOL', '1s', { limit: 100 })).length;
    // Each step: a flush (the new second is written), then 10 statements of 2 rows.
    for (const [second, remaining] of [
      [0, 30],
      [1, 10],
      [2, 0],
    ] as const) {
      recorder.record({ symbol: 'SOL', price: '200', timestamp: at(T0 + 2 * HOUR + second * 1000) });
      await recorder.step();
      assert.equal(await written(), second + 1, 'the flush ran');
      assert.equal(await left(), remaining);
    }
    await recorder.close();
    await db.close();
  });

  it('a retention pass under way stops when close() begins, so the last flush is not held up', async () => {
    const { db, recorder } = await recorderWithBacklog();
    recorder.record({ symbol: 'SOL', price: '200', timestamp: at(T0 + 2 * HOUR) });
    // A step (flush, then up to 10 delete statements) has begun when the process shuts down.
    const step = recorder.step();
    recorder.record({ symbol: 'SOL', price: '201', timestamp: at(T0 + 2 * HOUR + 1000) });
    await Promise.all([step, recorder.close()]);
    assert.ok(recorder.stats().pruned <= 2, `at most the statement under way: ${recorder.stats().pruned} rows`);
    assert.deepEqual(
      (await db.candles.list('SOL', '1s', { limit: 10 })).map((c) => c.c),
      ['200', '201'],
      'the last flush wrote the last second',
    );
    await db.close();
  });

  it('refuses bad options with a message naming them', () => {
    assert.throws(() => createCandleRecorder({ db, flushIntervalMs: 0 }), /flushIntervalMs/);
    assert.throws(() => createCandleRecorder({ db, pruneBatchSize: 0 }), /pruneBatchSize/);
    assert.throws(() => createCandleRecorder({ db, retention: { '1s': -5 } }), /retention of 1s/);
  });
});

/** `db` whose single writer counts the statements run through it. */
function countingRuns(db: Database, runs: { count: number }): Pick<Database, 'openSingleWriter'> {
  return {
    openSingleWriter(lockKey) {
      const writer = db.openSingleWriter(lockKey);
      const counted: SingleWriter = {
        get isWriter() {
          return writer.isWriter;
        },
        tryAcquire: () => writer.tryAcquire(),
        run(work) {
          runs.count++;
          return writer.run(work);
        },
        close: () => writer.close(),
      };
      return counted;
    },
  };
}

/**
 * Two candle writers race on one PostgreSQL database: two recorders, each with its own
 * `Database` (its own pools and writer connection), as two worker processes have. Each sees
 * its own prices for the same seconds, so the stored candles show whose writes landed.
 */
describe('candle recorders racing on one PostgreSQL', () => {
  let database: Awaited<ReturnType<typeof createTestDatabase>>;
  let dbs: Database[] = [];
  let recorders: CandleRecorder[] = [];

  before(async () => {
    database = await createTestDatabase('tw_candle_race');
    dbs = await Promise.all([openDatabase({ url: database.url }), openDatabase({ url: database.url })]);
    recorders = dbs.map((db) => createCandleRecorder({ db }));
  });
  after(async () => {
    for (const recorder of recorders) await recorder.close();
    for (const db of dbs) await db.close();
    await database?.drop();
  });

  it('has exactly one writer, whose candles alone are stored; the other takes over when it goes', async () => {
    const [low, high] = recorders as [CandleRecorder, CandleRecorder];
    const tick = (second: number) => {
      // The low recorder's prices are below 150, the high one's above.
      low.record({ symbol: 'SOL', price: `${100 + (second % 10)}.5`, timestamp: at(T0 + second * 1000) });
      high.record({ symbol: 'SOL', price: `${200 + (second % 10)}.5`, timestamp: at(T0 + second * 1000) });
    };
    for (let second = 0; second < 20; second++) {
      tick(second);
      const results = await Promise.all([low.flush(), high.flush()]);
      assert.equal(results.filter((r) => r.writer).length, 1, `one writer at second ${second}`);
    }
    const writerIsLow = low.stats().writer;
    const [writer, standby] = writerIsLow ? [low, high] : [high, low];
    const stored = await dbs[0]!.candles.list('SOL', '1s', { limit: 100 });
    assert.equal(stored.length, 20);
    for (const candle of stored) {
      assert.equal(
        Number(candle.h) < 150,
        writerIsLow,
        `every stored candle is the writer's: ${JSON.stringify(candle)}`,
      );
    }
    assert.equal(standby.stats().discarded, 0, 'kept for a minute, in case the writer goes');
    assert.equal(standby.stats().written, 0);

    // The writer stops (a worker shut down): the standby's next flush takes over, and writes
    // what it kept meanwhile too (its view of the 20 seconds, their minute and hour, and the new second).
    await writer.close();
    tick(20);
    assert.deepEqual(await standby.flush(), { writer: true, written: 23, failed: false });
    const after = await dbs[1]!.candles.list('SOL', '1s', { limit: 100 });
    assert.equal(after.length, 21);
    assert.equal(Number(after.at(-1)!.h) < 150, !writerIsLow, 'the new writer wrote the new second');
    // The minute open when the writer changed keeps the first writer's open and both writers' extremes.
    const [minute] = await dbs[1]!.candles.list('SOL', '1m', { limit: 1 });
    assert.deepEqual(
      [minute!.o, minute!.l, minute!.h],
      writerIsLow ? ['100.5', '100.5', '209.5'] : ['200.5', '100.5', '209.5'],
    );
  });
});

describe('a standby when the writer vanished', () => {
  let database: Awaited<ReturnType<typeof createTestDatabase>>;
  let dbs: Database[] = [];

  before(async () => {
    database = await createTestDatabase('tw_candle_gone_writer');
    dbs = await Promise.all([openDatabase({ url: database.url }), openDatabase({ url: database.url })]);
  });
  after(async () => {
    for (const db of dbs) await db.close();
    await database?.drop();
  });

  it('writes the candles that closed while the lock outlived its writer', async () => {
    // The writer of another process whose host went away: its session, and so the lock, lingers
    // until the server gives it up, and it writes nothing meanwhile.
    const ghost = dbs[1]!.openSingleWriter(CANDLE_WRITER_LOCK_KEY);
    assert.equal(await ghost.tryAcquire(), true);
    const recorder = createCandleRecorder({ db: dbs[0]! });
    try {
      for (let s = 0; s < 5; s++) {
        recorder.record({ symbol: 'BTC', price: `${60000 + s}`, timestamp: at(T0 + s * 1000) });
        assert.equal((await recorder.flush()).writer, false);
      }
      await ghost.close(); // the server let the dead session go
      recorder.record({ symbol: 'BTC', price: '60005', timestamp: at(T0 + 5000) });
      assert.equal((await recorder.flush()).writer, true);
      assert.deepEqual(
        (await dbs[0]!.candles.list('BTC', '1s', { limit: 10 })).map((c) => c.c),
        ['60000', '60001', '60002', '60003', '60004', '60005'],
      );
      assert.deepEqual(await dbs[0]!.candles.list('BTC', '1m', { limit: 1 }), [
        { t: T0, o: '60000', h: '60005', l: '60000', c: '60005' },
      ]);
      assert.equal(recorder.stats().discarded, 0);
    } finally {
      await recorder.close();
    }
  });
});

describe('candle recorder before its database is there', () => {
  it('aggregates meanwhile and writes everything once the database opens', async () => {
    let open!: (db: Database) => void;
    const later = new Promise<Database>((resolve) => (open = resolve));
    const recorder = createCandleRecorder({ db: later });
    for (let s = 0; s < 5; s++) recorder.record({ symbol: 'SOL', price: `${200 + s}`, timestamp: at(T0 + s * 1000) });
    assert.deepEqual(await recorder.flush(), { writer: false, written: 0, failed: true });
    assert.equal(recorder.stats().discarded, 0, 'nothing is dropped while nobody is known to write');

    const db = await openDatabase({ dataDir: 'memory://' });
    open(db);
    await later;
    assert.deepEqual(await recorder.flush(), { writer: true, written: 7, failed: false });
    assert.deepEqual(
      (await db.candles.list('SOL', '1s', { limit: 10 })).map((c) => c.c),
      ['200', '201', '202', '203', '204'],
    );
    await recorder.close();
    await db.close();
  });

  it('keeps its candles while PostgreSQL cannot be reached', async () => {
    const database = await createTestDatabase('tw_candle_gone');
    const db = await openDatabase({ url: database.url });
    const recorder = createCandleRecorder({ db });
    recorder.record({ symbol: 'ETH', price: '3000', timestamp: at(T0) });
    assert.equal((await recorder.flush()).written, 3);
    await db.close();
    await database.drop();
    // The writer's connection was ended with the database: the lock is gone, and so is the server.
    recorder.record({ symbol: 'ETH', price: '3001', timestamp: at(T0 + 1000) });
    const result = await recorder.flush();
    assert.equal(result.failed, true);
    assert.equal(recorder.stats().discarded, 0);
    await recorder.close();
  });
});
