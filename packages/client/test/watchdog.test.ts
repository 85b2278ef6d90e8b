import assert from 'node:assert/strict';
import { afterEach, beforeEach, mock, test } from 'node:test';
import { Watchdog } from '../src/watchdog.ts';

// Fake timers and a clock that follows them: the rules are about durations, so the test moves
// time itself instead of waiting for it.
let clock = 0;
const advance = (ms: number) => {
  for (let i = 0; i < ms; i++) {
    clock += 1;
    mock.timers.tick(1);
  }
};

beforeEach(() => {
  clock = 0;
  mock.timers.enable({ apis: ['setTimeout'] });
});
afterEach(() => mock.timers.reset());

function watch(pingIntervalMs = 100, pongTimeoutMs = 50) {
  const events: string[] = [];
  const watchdog = new Watchdog({
    pingIntervalMs,
    pongTimeoutMs,
    now: () => clock,
    sendPing: () => events.push(`ping@${clock}`),
    onDead: () => events.push(`dead@${clock}`),
  });
  return { watchdog, events };
}

test('pings after the interval without frames, and a frame after the ping keeps the socket', () => {
  const { watchdog, events } = watch();
  advance(99);
  assert.deepEqual(events, []);
  advance(1);
  assert.deepEqual(events, ['ping@100']);
  advance(30);
  watchdog.frameReceived(); // the pong, or any other frame
  advance(100);
  // Quiet again from 130: the next ping comes a full interval later, and nothing died.
  assert.deepEqual(events, ['ping@100', 'ping@230']);
  watchdog.stop();
});

test('never pings while frames keep arriving', () => {
  const { watchdog, events } = watch();
  for (let i = 0; i < 50; i++) {
    advance(60);
    watchdog.frameReceived();
  }
  assert.deepEqual(events, []);
  watchdog.stop();
});

test('declares the socket dead once, when no frame came within the timeout after the ping', () => {
  const { events } = watch();
  advance(100 + 49);
  assert.deepEqual(events, ['ping@100']);
  advance(1);
  assert.deepEqual(events, ['ping@100', 'dead@150']);
  advance(1000);
  assert.deepEqual(events, ['ping@100', 'dead@150']);
});

test('a frame before the ping postpones it but does not answer it', () => {
  const { watchdog, events } = watch();
  advance(99);
  watchdog.frameReceived();
  advance(100);
  assert.deepEqual(events, ['ping@199']);
  advance(50);
  assert.deepEqual(events, ['ping@199', 'dead@249']);
});

test('stop() ends every check', () => {
  const { watchdog, events } = watch();
  advance(100);
  watchdog.stop();
  advance(1000);
  assert.deepEqual(events, ['ping@100']);
});
