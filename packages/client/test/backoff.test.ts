import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CLOSE_CODES } from '@repo/protocol';
import { nextReconnectAttempt } from '../src/index.ts';

test('the attempt count starts over after a healthy connection, but not after a penalised close', () => {
  assert.equal(nextReconnectAttempt(5, true, CLOSE_CODES.abnormalClosure), 0, 'dropped after being open');
  assert.equal(nextReconnectAttempt(5, true, CLOSE_CODES.goingAway), 0, 'server going away');
  assert.equal(nextReconnectAttempt(5, true, CLOSE_CODES.historyUnavailable), 0, 'resubscribe after a history gap');
  assert.equal(nextReconnectAttempt(5, false, CLOSE_CODES.abnormalClosure), 5, 'never got open: keep growing');
  assert.equal(nextReconnectAttempt(5, true, CLOSE_CODES.policyViolation), 5, 'policy violation (1008)');
  assert.equal(nextReconnectAttempt(5, true, CLOSE_CODES.slowConsumer), 5, 'slow consumer (4008)');
  assert.equal(nextReconnectAttempt(5, true, undefined), 0, 'no close code at all');
});
