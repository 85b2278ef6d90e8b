import assert from 'node:assert/strict';
import { test } from 'node:test';
import { backoffDelay, nextReconnectAttempt } from '../src/index.ts';

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

test('the attempt count starts over after a healthy connection, but not after a penalised close', () => {
  assert.equal(nextReconnectAttempt(5, true, 1006), 0, 'dropped after being open');
  assert.equal(nextReconnectAttempt(5, true, 1001), 0, 'server going away');
  assert.equal(nextReconnectAttempt(5, false, 1006), 5, 'never got open: keep growing');
  assert.equal(nextReconnectAttempt(5, true, 1008), 5, 'policy violation');
  assert.equal(nextReconnectAttempt(5, true, 4008), 5, 'slow consumer');
});
