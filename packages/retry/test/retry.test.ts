import assert from 'node:assert/strict';
import { test } from 'node:test';
import { backoffDelay, TimeoutError, withTimeout } from '../src/index.ts';

const options = { baseDelayMs: 250, maxDelayMs: 10_000 };

test('the delay is uniform below min(max, base * 2^attempt)', () => {
  assert.equal(
    backoffDelay(0, options, () => 0),
    0,
  );
  assert.equal(
    backoffDelay(0, options, () => 0.999999),
    249,
  );
  assert.equal(
    backoffDelay(3, options, () => 0.999999),
    1999,
  );
  assert.equal(
    backoffDelay(3, options, () => 0.5),
    1000,
  );
});

test('the delay is capped at maxDelayMs however many attempts failed', () => {
  for (const attempt of [6, 10, 31, 1000, 1e9]) {
    const delay = backoffDelay(attempt, options, () => 0.999999);
    assert.ok(delay < options.maxDelayMs && delay >= options.maxDelayMs - 1, `attempt ${attempt}: ${delay}`);
  }
});

test('delays are spread over the whole window (full jitter), not clustered at the ceiling', () => {
  const ceiling = 250 * 2 ** 4;
  const delays = Array.from({ length: 500 }, () => backoffDelay(4, options));
  assert.ok(delays.every((d) => Number.isInteger(d) && d >= 0 && d < ceiling));
  assert.ok(new Set(delays).size > 100, 'many distinct delays');
  assert.ok(Math.min(...delays) < ceiling / 4, 'some retry early');
  assert.ok(Math.max(...delays) > (ceiling * 3) / 4, 'some retry late');
});

test('withTimeout passes a result or an error through, and rejects with TimeoutError past the deadline', async () => {
  assert.equal(await withTimeout(Promise.resolve(7), 1000, 'quick'), 7);
  await assert.rejects(withTimeout(Promise.reject(new Error('boom')), 1000, 'failing'), /boom/);
  const never = new Promise<never>(() => {});
  // withTimeout's own timer does not keep the process alive; this one does, for the test.
  const keepAlive = setTimeout(() => {}, 5000);
  await assert.rejects(withTimeout(never, 20, 'session verification'), (err: unknown) => {
    assert.ok(err instanceof TimeoutError);
    assert.equal(err.code, 'timeout');
    assert.equal(err.message, 'session verification took longer than 20 ms');
    return true;
  });
  clearTimeout(keepAlive);
});
