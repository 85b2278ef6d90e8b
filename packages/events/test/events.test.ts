import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  CLIENT_EVENT_KINDS,
  decodeEvent,
  EVENT_KINDS,
  EventValidationError,
  MAX_EVENT_LENGTH,
  validateEvent,
} from '../src/index.ts';

const fill = {
  userId: 123,
  orderId: 456,
  side: 'buy' as const,
  baseAsset: 'SOL',
  quoteAsset: 'USD',
  executedPrice: '231.45',
  executedSize: '10',
  fee: '0.23145',
};

describe('validateEvent', () => {
  it('fills a missing timestamp from the clock and keeps a given one', () => {
    const now = () => new Date('2026-01-02T03:04:05.000Z');
    assert.deepEqual(validateEvent('order_filled', fill, now), { ...fill, timestamp: '2026-01-02T03:04:05.000Z' });
    const given = { ...fill, timestamp: '2025-12-31T23:59:59Z' };
    assert.deepEqual(validateEvent('order_filled', given, now), given);
  });

  it('refuses what does not fit the schema with a typed error naming the field', () => {
    const bad: [Record<string, unknown>, string][] = [
      [{ ...fill, userId: 0 }, 'userId'],
      [{ ...fill, orderId: 1.5 }, 'orderId'],
      [{ ...fill, executedPrice: 231.45 }, 'executedPrice'],
      [{ ...fill, executedSize: '1e3' }, 'executedSize'],
      [{ ...fill, fee: '-1' }, 'fee'],
      [{ ...fill, side: 'hold' }, 'side'],
      [{ ...fill, timestamp: 'yesterday' }, 'timestamp'],
    ];
    for (const [input, field] of bad) {
      assert.throws(
        () => validateEvent('order_filled', input),
        (err: unknown) =>
          err instanceof EventValidationError &&
          err.code === 'invalid_event' &&
          err.kind === 'order_filled' &&
          err.issues.some((i) => i.path === field),
        field,
      );
    }
    assert.throws(() => validateEvent('price', { symbol: 'SOL', price: '0' }), { code: 'invalid_event' });
    assert.throws(() => validateEvent('price', null), EventValidationError);
  });

  it('strips unknown fields, so nothing extra reaches clients', () => {
    const event = validateEvent('order_rejected', {
      userId: 1,
      orderId: 2,
      side: 'sell',
      baseAsset: 'SOL',
      quoteAsset: 'USD',
      requestedSize: '5',
      reason: 'insufficient position',
      secret: 'x',
    });
    assert.equal('secret' in event, false);
  });

  it('takes a session revocation as {sessionId, userId?}, without a timestamp', () => {
    assert.deepEqual(validateEvent('session_revoked', { sessionId: 's-1', userId: 3, extra: 1 }), {
      sessionId: 's-1',
      userId: 3,
    });
    assert.deepEqual(validateEvent('session_revoked', { sessionId: 's-1' }), { sessionId: 's-1' });
    assert.throws(() => validateEvent('session_revoked', { sessionId: '' }), EventValidationError);
    assert.throws(() => validateEvent('session_revoked', { sessionId: 42 }), EventValidationError);
    assert.throws(() => validateEvent('session_revoked', { sessionId: 's-1', userId: 0 }), EventValidationError);
  });
});

describe('decodeEvent', () => {
  it('reports bad JSON, bad shapes and oversized messages as values, never throws', () => {
    const json = decodeEvent('price', '{nope');
    assert.equal(json.ok, false);
    if (!json.ok) assert.equal(json.reason, 'invalid_json');
    const shape = decodeEvent(
      'order_filled',
      JSON.stringify({ ...fill, userId: -1, timestamp: new Date().toISOString() }),
    );
    assert.equal(shape.ok, false);
    if (!shape.ok) {
      assert.equal(shape.reason, 'invalid_shape');
      assert.match(shape.detail, /userId/);
    }
    const large = decodeEvent('price', ' '.repeat(MAX_EVENT_LENGTH + 1));
    assert.equal(large.ok, false);
    if (!large.ok) assert.equal(large.reason, 'too_large');
  });

  it('decodes a valid event of each kind, stripped of unknown keys', () => {
    const ok = decodeEvent('order_filled', JSON.stringify({ ...fill, timestamp: '2026-01-01T00:00:00Z', extra: 1 }));
    assert.equal(ok.ok, true);
    if (ok.ok) assert.deepEqual(ok.event, { ...fill, timestamp: '2026-01-01T00:00:00Z' });
    const revoked = decodeEvent('session_revoked', '{"sessionId":"abc"}');
    assert.deepEqual(revoked, { ok: true, event: { sessionId: 'abc' } });
    assert.equal(decodeEvent('session_revoked', '{"session":"abc"}').ok, false);
  });
});

describe('event kinds', () => {
  it('forwards every kind to clients except session revocations', () => {
    assert.deepEqual(
      Object.keys(EVENT_KINDS).filter((k) => !(CLIENT_EVENT_KINDS as readonly string[]).includes(k)),
      ['session_revoked'],
    );
  });
});
