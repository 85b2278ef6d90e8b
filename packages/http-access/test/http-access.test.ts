import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  addressKey,
  createAddressMatcher,
  createClientAddress,
  createMetricsAccess,
  isAddressOrCidr,
  isLoopback,
} from '../src/index.ts';

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

/** A request as Node hands it over: the peer's address and the headers. */
const request = (peer: string | undefined, forwardedFor?: string) => ({
  socket: { remoteAddress: peer },
  headers: forwardedFor === undefined ? {} : { 'x-forwarded-for': forwardedFor },
});

describe('createClientAddress', () => {
  it('without trusted proxies is the peer, whatever X-Forwarded-For says', () => {
    const clientOf = createClientAddress([]);
    assert.equal(clientOf(request('127.0.0.1', '203.0.113.5')), '127.0.0.1');
    assert.equal(clientOf(request('198.51.100.7', '10.0.0.1, 127.0.0.1')), '198.51.100.7');
    assert.equal(clientOf(request(undefined)), undefined);
  });

  it('walks X-Forwarded-For from the right over trusted hops only', () => {
    const clientOf = createClientAddress(['127.0.0.1', '10.0.0.0/8']);
    // The proxy appended the address it saw; what the client wrote itself is further left.
    assert.equal(clientOf(request('127.0.0.1', 'forged, 203.0.113.5')), '203.0.113.5');
    assert.equal(clientOf(request('127.0.0.1', '198.51.100.1, 203.0.113.5, 10.1.2.3')), '203.0.113.5');
    assert.equal(clientOf(request('::ffff:127.0.0.1', '203.0.113.5')), '203.0.113.5', 'IPv4-mapped peer');
    assert.equal(clientOf(request('127.0.0.1')), '127.0.0.1', 'no header: the proxy itself');
    // An untrusted peer's header is ignored altogether.
    assert.equal(clientOf(request('203.0.113.9', '127.0.0.1')), '203.0.113.9');
    assert.equal(clientOf(request('127.0.0.2', '203.0.113.5')), '127.0.0.2', 'only the listed loopback address');
    // Every hop trusted: the leftmost address is all there is.
    assert.equal(clientOf(request('127.0.0.1', '10.0.0.1, 10.0.0.2')), '10.0.0.1');
  });

  it('stops at the first untrusted hop on arbitrary chains (property)', () => {
    const trusted = ['127.0.0.1', '10.0.0.0/8'];
    const clientOf = createClientAddress(trusted);
    const hop = fc.constantFrom('127.0.0.1', '10.9.8.7', '203.0.113.5', '198.51.100.2', '::1', 'garbage');
    fc.assert(
      fc.property(hop, fc.array(hop, { maxLength: 5 }), (peer, chain) => {
        // Walk by hand: from the peer leftwards through the header, while the hop is trusted.
        const hops = [peer, ...[...chain].reverse()];
        const isTrusted = (a: string) => a === '127.0.0.1' || a.startsWith('10.');
        let i = 0;
        while (i < hops.length - 1 && isTrusted(hops[i]!)) i += 1;
        assert.equal(clientOf(request(peer, chain.length ? chain.join(', ') : undefined)), hops[i]);
      }),
    );
  });

  it('refuses entries that are neither addresses nor CIDR blocks', () => {
    assert.throws(() => createClientAddress(['127.0.0.1', 'proxy.local']), /"proxy.local" is not an IP address/);
  });
});

describe('createAddressMatcher', () => {
  it('matches listed addresses and CIDR blocks, IPv4-mapped as IPv4; an empty list matches nothing', () => {
    const exempt = createAddressMatcher(['127.0.0.1', '10.0.0.0/8', '2001:db8::/32']);
    for (const a of ['127.0.0.1', '::ffff:127.0.0.1', '10.200.1.1', '2001:db8:ffff::1'])
      assert.equal(exempt(a), true, a);
    for (const a of ['127.0.0.2', '11.0.0.1', '2001:db9::1', '::1', 'nope', undefined])
      assert.equal(exempt(a), false, String(a));
    assert.equal(createAddressMatcher([])('127.0.0.1'), false);
  });

  it('tells addresses and CIDRs from everything else', () => {
    for (const v of ['1.2.3.4', '10.0.0.0/8', '0.0.0.0/0', '::1', '2001:db8::/32', '::/0', '::ffff:1.2.3.4'])
      assert.equal(isAddressOrCidr(v), true, v);
    for (const v of ['', 'localhost', '10.0.0.0/33', '10.0.0.0/', '::/129', '1.2.3', '10.0.0.0/8/8', '1.2.3.4 '])
      assert.equal(isAddressOrCidr(v), false, v);
  });
});
