import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { addressKey, createMetricsAccess, isLoopback } from '../src/index.ts';

describe('addressKey', () => {
  it('keeps IPv4, unwraps IPv4-mapped IPv6, and groups IPv6 by /64 whatever its spelling', () => {
    assert.equal(addressKey('203.0.113.7'), '203.0.113.7');
    assert.equal(addressKey('::ffff:203.0.113.7'), '203.0.113.7');
    assert.equal(addressKey('::FFFF:203.0.113.7'), '203.0.113.7');
    const key = addressKey('2001:db8:1:2::1');
    assert.equal(key, '2001:db8:1:2::/64');
    for (const same of ['2001:0db8:0001:0002:ffff:ffff:ffff:ffff', '2001:DB8:1:2:0:0:0:9', '2001:db8:1:2::1.2.3.4']) {
      assert.equal(addressKey(same), key, same);
    }
    assert.notEqual(addressKey('2001:db8:1:3::1'), key);
    assert.equal(addressKey('1:2:3::4:5:6:7'), '1:2:3:0::/64');
    assert.equal(addressKey('1:2::3:4:5:1.2.3.4'), '1:2:0:3::/64', 'an embedded IPv4 counts as two groups');
    assert.equal(addressKey('fe80::1%eth0'), 'fe80:0:0:0::/64');
    assert.equal(addressKey('::1'), '0:0:0:0::/64');
    assert.equal(addressKey('not an address'), 'not an address');
  });

  it('gives every address of one /64 the same key (property)', () => {
    const group = fc.integer({ min: 0, max: 0xffff });
    fc.assert(
      fc.property(
        fc.array(group, { minLength: 8, maxLength: 8 }),
        fc.array(group, { minLength: 4, maxLength: 4 }),
        (a, tail) => {
          const full = a.map((g) => g.toString(16)).join(':');
          const sibling = [...a.slice(0, 4), ...tail].map((g) => g.toString(16).padStart(4, '0')).join(':');
          assert.equal(addressKey(full), addressKey(sibling));
        },
      ),
    );
  });
});

describe('isLoopback', () => {
  it('is true for 127/8 and ::1 in every spelling, false otherwise', () => {
    for (const a of ['127.0.0.1', '127.1.2.3', '::1', '0:0:0:0:0:0:0:1', '::ffff:127.0.0.1'])
      assert.equal(isLoopback(a), true, a);
    for (const a of [
      '10.0.0.1',
      '128.0.0.1',
      '::2',
      '::',
      '::ffff:10.0.0.1',
      '2001:db8::1',
      '',
      undefined,
      'localhost',
    ]) {
      assert.equal(isLoopback(a), false, String(a));
    }
  });
});

describe('createMetricsAccess', () => {
  it('without a token: loopback only, 403 for everyone else', () => {
    const access = createMetricsAccess(undefined);
    assert.deepEqual(access({ clientAddress: '127.0.0.1', authorization: undefined }), { allowed: true });
    assert.deepEqual(access({ clientAddress: '::1', authorization: undefined }), { allowed: true });
    assert.deepEqual(access({ clientAddress: '203.0.113.9', authorization: 'Bearer whatever-token-123' }), {
      allowed: false,
      status: 403,
      code: 'forbidden',
    });
    assert.equal(access({ clientAddress: undefined, authorization: undefined }).allowed, false);
  });

  it('with a token: Bearer required from everyone, loopback included', () => {
    const access = createMetricsAccess('s3cret-metrics-token');
    assert.deepEqual(access({ clientAddress: '203.0.113.9', authorization: 'Bearer s3cret-metrics-token' }), {
      allowed: true,
    });
    assert.deepEqual(access({ clientAddress: '127.0.0.1', authorization: 'bearer  s3cret-metrics-token' }), {
      allowed: true,
    });
    for (const authorization of [
      undefined,
      '',
      'Bearer s3cret-metrics-toke',
      'Bearer s3cret-metrics-token2',
      'Basic x',
    ]) {
      const answer = access({ clientAddress: '127.0.0.1', authorization });
      assert.equal(answer.allowed, false, String(authorization));
      assert.equal(!answer.allowed && answer.status, 401);
    }
    assert.throws(() => createMetricsAccess('short'), /16-256/);
    assert.throws(() => createMetricsAccess('has space in the token'), /visible ASCII/);
  });
});
