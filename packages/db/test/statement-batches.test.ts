import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { batchedStatement } from '../src/statement-batches.ts';
import type { Query, Row } from '../src/statements.ts';

// The batcher's own rules, on a driver that answers when told to: which calls share a
// statement, and what each caller gets when the statement fails. The order statements that
// use it run against real PostgreSQL and PGlite in database-suite.ts.

interface Sent {
  /** The statement's parameter arrays: one array per parameter, one element per call. */
  columns: unknown[][];
  answer(rows: Row[]): void;
  fail(err: unknown): void;
}

function driver(): { query: Query; sent: Sent[] } {
  const sent: Sent[] = [];
  const query: Query = (_statement, values) =>
    new Promise<Row[]>((resolve, reject) => {
      sent.push({ columns: values as unknown[][], answer: resolve, fail: reject });
    });
  return { query, sent };
}

/** Every call answers one row: its position and its first parameter doubled. */
function echo(columns: unknown[][]): Row[] {
  return columns[0]!.map((value, n) => ({ i: n + 1, doubled: (value as number) * 2 }));
}

const STATEMENT = { name: 'test', text: 'select' };
const tick = () => new Promise<void>((resolve) => setImmediate(resolve));

/** Calls [1] and [2], sent together as the second statement (`sent[1]`), not yet answered. */
async function twoCallsInOneStatement() {
  const { query, sent } = driver();
  const call = batchedStatement(query, STATEMENT, { maxBatch: 64, maxInFlight: 1 });
  const blocker = call([0]);
  await tick();
  const calls = [call([1]), call([2])];
  sent[0]!.answer(echo(sent[0]!.columns));
  await blocker;
  await tick();
  assert.deepEqual(sent[1]!.columns, [[1, 2]]);
  return { call, sent, calls };
}

describe('batched statements', () => {
  it('sends a call that finds the statement idle at once, and the calls that wait together next', async () => {
    const { query, sent } = driver();
    const call = batchedStatement(query, STATEMENT, { maxBatch: 64, maxInFlight: 1 });
    const first = call([1, 'a']);
    await tick();
    assert.deepEqual(
      sent.map((s) => s.columns),
      [[[1], ['a']]],
    );
    const waiting = [call([2, 'b']), call([3, 'c']), call([4, 'd'])];
    await tick();
    assert.equal(sent.length, 1, 'nothing more while the first runs');
    sent[0]!.answer(echo(sent[0]!.columns));
    assert.deepEqual(await first, [{ i: 1, doubled: 2 }]);
    await tick();
    assert.deepEqual(sent[1]!.columns, [
      [2, 3, 4],
      ['b', 'c', 'd'],
    ]);
    sent[1]!.answer(echo(sent[1]!.columns));
    assert.deepEqual(
      (await Promise.all(waiting)).map((rows) => rows.map((r) => r.doubled)),
      [[4], [6], [8]],
    );
  });

  it('keeps calls with one key apart and cuts batches at maxBatch', async () => {
    const { query, sent } = driver();
    const call = batchedStatement(query, STATEMENT, {
      maxBatch: 2,
      maxInFlight: 1,
      keyOf: (values) => values[1],
    });
    const calls = [call([1, 'u1']), call([2, 'u1']), call([3, 'u2']), call([4, 'u3'])];
    for (let n = 0; n < 2; n++) {
      await tick();
      sent[n]!.answer(echo(sent[n]!.columns));
    }
    await tick();
    // u1's second call waits for the next statement; the first is full at two.
    assert.deepEqual(
      sent.map((s) => s.columns[0]),
      [
        [1, 3],
        [2, 4],
      ],
    );
    assert.deepEqual(
      (await Promise.all(calls)).map((rows) => rows[0]!.doubled),
      [2, 4, 6, 8],
    );
  });

  it('runs each call alone after the server refused their statement, each getting its own answer', async () => {
    const { sent, calls } = await twoCallsInOneStatement();
    // In the server's language (lc_messages = fr): the SQLSTATE says it was refused.
    sent[1]!.fail(
      Object.assign(new Error('syntaxe en entrée invalide pour le type uuid'), { severity: 'ERREUR', code: '22P02' }),
    );
    await tick();
    assert.deepEqual(
      sent.slice(2).map((s) => s.columns),
      [[[1]], [[2]]],
    );
    sent[2]!.answer(echo(sent[2]!.columns));
    sent[3]!.fail(Object.assign(new Error('still refused'), { severity: 'ERROR', code: '22P02' }));
    assert.deepEqual(await calls[0], [{ i: 1, doubled: 2 }]);
    await assert.rejects(calls[1]!, /still refused/);
  });

  it('gives every caller the error, and runs nothing again, when the statement may have committed', async () => {
    const ended = [
      new Error('Connection terminated unexpectedly'),
      Object.assign(new Error('terminating connection due to administrator command'), {
        severity: 'FATAL',
        code: '57P01',
      }),
      Object.assign(new Error('arrêt de la connexion'), { severity: 'FATAL', code: '57P01' }),
      Object.assign(new Error('connection failure'), { severity: 'ERROR', code: '08006' }),
    ];
    for (const err of ended) {
      const { sent, calls } = await twoCallsInOneStatement();
      sent[1]!.fail(err);
      for (const c of calls) await assert.rejects(c, (thrown) => thrown === err);
      await tick();
      assert.equal(sent.length, 2, `no statement sent again after "${err.message}"`);
    }
    const { call, sent, calls } = await twoCallsInOneStatement();
    sent[1]!.fail(ended[0]);
    await Promise.allSettled(calls);
    // The next call is sent as usual.
    const next = call([3]);
    await tick();
    sent[2]!.answer(echo(sent[2]!.columns));
    assert.deepEqual(await next, [{ i: 1, doubled: 6 }]);
  });

  it('refuses options that would send nothing', () => {
    const { query } = driver();
    assert.throws(() => batchedStatement(query, STATEMENT, { maxBatch: 0, maxInFlight: 1 }), /maxBatch/);
    assert.throws(() => batchedStatement(query, STATEMENT, { maxBatch: 8, maxInFlight: 0.5 }), /maxInFlight/);
  });
});
