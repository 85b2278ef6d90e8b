import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { randomBytes, scryptSync } from 'node:crypto';
import {
  SESSION_TOKEN_PATTERN,
  canonical,
  checkSize,
  executeMarketOrder,
  hashPassword,
  needsRehash,
  hashToken,
  newSessionToken,
  tokenHashesEqual,
  verifyPassword,
} from '../src/index.ts';

const empty = { size: '0', avgEntryPrice: '0' };

describe('canonical decimals', () => {
  it('writes plain notation without trailing zeros or exponent', () => {
    assert.equal(canonical('10.000'), '10');
    assert.equal(canonical('2314.50'), '2314.5');
    assert.equal(canonical('0.23145'), '0.23145');
    assert.equal(canonical('0.0000001'), '0.0000001');
    assert.equal(canonical('123456789012345678901234567890.5'), '123456789012345678901234567890.5');
    assert.equal(canonical('-0'), '0');
  });

  it('accepts sizes with up to 9 decimals and refuses everything else', () => {
    assert.deepEqual(checkSize('10', '1000'), { ok: true, size: '10' });
    assert.deepEqual(checkSize('0.123456789', '1000'), { ok: true, size: '0.123456789' });
    assert.deepEqual(
      checkSize('1.50000000000', '1000'),
      { ok: true, size: '1.5' },
      'trailing zeros carry no precision',
    );
    assert.deepEqual(checkSize('0.0000000001', '1000'), { ok: false, reason: 'too_precise' });
    for (const bad of [
      '',
      '-1',
      '+1',
      '1e3',
      '01',
      '.5',
      '5.',
      ' 1',
      '1,5',
      'NaN',
      'Infinity',
      '0x10',
      '1'.repeat(65),
    ]) {
      assert.deepEqual(checkSize(bad, '1000'), { ok: false, reason: 'not_decimal' }, bad);
    }
    assert.deepEqual(checkSize('0', '1000'), { ok: false, reason: 'not_positive' });
    assert.deepEqual(checkSize('0.000000000', '1000'), { ok: false, reason: 'not_positive' });
    assert.deepEqual(checkSize('1000.000000001', '1000'), { ok: false, reason: 'too_large' });
  });
});

describe('paper-trading rules', () => {
  it('fills the design example exactly: 10 SOL at 231.45, fee 0.23145', () => {
    const outcome = executeMarketOrder({
      side: 'buy',
      size: '10',
      price: '231.45',
      feeRate: '0.0001',
      quoteAvailable: '10000',
      position: empty,
    });
    assert.deepEqual(outcome, {
      status: 'filled',
      executedPrice: '231.45',
      executedSize: '10',
      fee: '0.23145',
      quoteAvailable: '7685.26855',
      position: { size: '10', avgEntryPrice: '231.45' },
    });
  });

  it('allows a buy that spends the balance to the last cent including the fee, and not one more', () => {
    // 99.99 × 100 = 9999, fee 0.9999: total 9999.9999.
    const exact = executeMarketOrder({
      side: 'buy',
      size: '100',
      price: '99.99',
      feeRate: '0.0001',
      quoteAvailable: '9999.9999',
      position: empty,
    });
    assert.equal(exact.status, 'filled');
    assert.equal(exact.status === 'filled' && exact.quoteAvailable, '0');
    const short = executeMarketOrder({
      side: 'buy',
      size: '100',
      price: '99.99',
      feeRate: '0.0001',
      quoteAvailable: '9999.9998',
      position: empty,
    });
    assert.deepEqual(short, { status: 'rejected', reason: 'insufficient_funds' });
  });

  it('weights avgEntryPrice over buys, keeps it on sells and resets it at zero', () => {
    const first = executeMarketOrder({
      side: 'buy',
      size: '10',
      price: '231.45',
      feeRate: '0',
      quoteAvailable: '100000',
      position: empty,
    });
    assert.ok(first.status === 'filled');
    const second = executeMarketOrder({
      side: 'buy',
      size: '5',
      price: '240',
      feeRate: '0',
      quoteAvailable: first.quoteAvailable,
      position: first.position,
    });
    assert.ok(second.status === 'filled');
    // (10 × 231.45 + 5 × 240) / 15 = 3514.5 / 15 = 234.3
    assert.deepEqual(second.position, { size: '15', avgEntryPrice: '234.3' });
    const sell = executeMarketOrder({
      side: 'sell',
      size: '5',
      price: '300',
      feeRate: '0',
      quoteAvailable: second.quoteAvailable,
      position: second.position,
    });
    assert.ok(sell.status === 'filled');
    assert.deepEqual(sell.position, { size: '10', avgEntryPrice: '234.3' });
    const close = executeMarketOrder({
      side: 'sell',
      size: '10',
      price: '1',
      feeRate: '0',
      quoteAvailable: sell.quoteAvailable,
      position: sell.position,
    });
    assert.ok(close.status === 'filled');
    assert.deepEqual(close.position, { size: '0', avgEntryPrice: '0' });
  });

  it('rounds a repeating average half-up at 18 decimals', () => {
    const outcome = executeMarketOrder({
      side: 'buy',
      size: '2',
      price: '1',
      feeRate: '0',
      quoteAvailable: '100',
      position: { size: '1', avgEntryPrice: '2' },
    });
    assert.ok(outcome.status === 'filled');
    assert.equal(outcome.position.avgEntryPrice, '1.333333333333333333');
  });

  it("rounds in the house's favour at 18 decimals: a buy never fills for nothing, a sell never pays extra", () => {
    // Price 1e-18 × size 0.4: the exact cost is 4e-19.
    const buy = executeMarketOrder({
      side: 'buy',
      size: '0.4',
      price: '0.000000000000000001',
      feeRate: '0.0001',
      quoteAvailable: '0',
      position: empty,
    });
    assert.deepEqual(buy, { status: 'rejected', reason: 'insufficient_funds' });
    const paid = executeMarketOrder({
      side: 'buy',
      size: '0.4',
      price: '0.000000000000000001',
      feeRate: '0.0001',
      quoteAvailable: '1',
      position: empty,
    });
    assert.ok(paid.status === 'filled');
    // Cost 1e-18 (up from 4e-19) and fee 1e-18 (up from 4e-23).
    assert.equal(paid.fee, '0.000000000000000001');
    assert.equal(paid.quoteAvailable, '0.999999999999999998');
    // Proceeds 0.0000049 × 1e-9 = 4.9e-15, exact; fee 4.9e-19, charged as 1e-18.
    const sell = executeMarketOrder({
      side: 'sell',
      size: '0.000000001',
      price: '0.0000049',
      feeRate: '0.0001',
      quoteAvailable: '0',
      position: { size: '1', avgEntryPrice: '1' },
    });
    assert.ok(sell.status === 'filled');
    assert.equal(sell.fee, '0.000000000000000001');
    assert.equal(sell.quoteAvailable, '0.000000000000004899');
    // Proceeds 0.333333333333333333 × 0.5 = 0.1666666666666666665: paid down, not half-up.
    const half = executeMarketOrder({
      side: 'sell',
      size: '0.5',
      price: '0.333333333333333333',
      feeRate: '0',
      quoteAvailable: '0',
      position: { size: '1', avgEntryPrice: '1' },
    });
    assert.ok(half.status === 'filled');
    assert.equal(half.quoteAvailable, '0.166666666666666666');
  });

  it('takes the sell fee from the proceeds', () => {
    const outcome = executeMarketOrder({
      side: 'sell',
      size: '4',
      price: '250',
      feeRate: '0.0001',
      quoteAvailable: '10',
      position: { size: '4', avgEntryPrice: '200' },
    });
    // 1000 proceeds − 0.1 fee.
    assert.deepEqual(outcome, {
      status: 'filled',
      executedPrice: '250',
      executedSize: '4',
      fee: '0.1',
      quoteAvailable: '1009.9',
      position: { size: '0', avgEntryPrice: '0' },
    });
  });

  it('rejects a sell above the position and any order without a price', () => {
    assert.deepEqual(
      executeMarketOrder({
        side: 'sell',
        size: '1.000000001',
        price: '10',
        feeRate: '0',
        quoteAvailable: '0',
        position: { size: '1', avgEntryPrice: '5' },
      }),
      { status: 'rejected', reason: 'insufficient_position' },
    );
    assert.deepEqual(
      executeMarketOrder({ side: 'buy', size: '1', price: null, feeRate: '0', quoteAvailable: '10', position: empty }),
      {
        status: 'rejected',
        reason: 'no_price',
      },
    );
  });
});

describe('credentials', () => {
  const cheap = { memoryKiB: 1024, passes: 1, parallelism: 1 };

  it('hashes with argon2id at OWASP parameters by default and verifies the right password only', async () => {
    const hash = await hashPassword('correct horse');
    assert.match(hash, /^\$argon2id\$v=19\$[mpt=0-9,]+\$[\w+/]+\$[\w+/]+$/);
    assert.equal(needsRehash(hash), false);
    assert.ok(hash.includes('m=19456') && hash.includes('t=2') && hash.includes('p=1'), hash);
    assert.equal(await verifyPassword('correct horse', hash), true);
    assert.equal(await verifyPassword('correct horsE', hash), false);
    const other = await hashPassword('correct horse', cheap);
    assert.notEqual(other, await hashPassword('correct horse', cheap), 'salted');
    assert.equal(needsRehash(other), true, 'other costs are rehashed');
    assert.equal(needsRehash(other, cheap), false);
    assert.equal(await verifyPassword('correct horse', other), true);
    assert.equal(await verifyPassword('correct horse', '$argon2id$v=19$m=1024,t=1,p=1$AAAA$BBBB'), false, 'malformed');
    assert.equal(await verifyPassword('correct horse', 'plain'), false);
    await assert.rejects(hashPassword('x', { ...cheap, memoryKiB: 10 }), RangeError);
  });

  it('still verifies legacy scrypt hashes (N up to 2^17) and marks them for rehashing', async () => {
    // Written exactly as the scrypt version stored them: scrypt$N$r$p$salt$key.
    const legacy = (password: string, N: number) => {
      const salt = randomBytes(16);
      const key = scryptSync(password, salt, 32, { N, r: 8, p: 1, maxmem: 256 * N * 8 });
      return ['scrypt', N, 8, 1, salt.toString('base64url'), key.toString('base64url')].join('$');
    };
    for (const N of [16_384, 131_072]) {
      const hash = legacy('correct horse', N);
      assert.equal(await verifyPassword('correct horse', hash), true, `N=${N}`);
      assert.equal(await verifyPassword('correct horsE', hash), false);
      assert.equal(needsRehash(hash), true);
    }
    assert.equal(await verifyPassword('correct horse', 'scrypt$3$8$1$AAAA$BBBB'), false, 'malformed stored hash');
    assert.equal(await verifyPassword('correct horse', legacy('x', 1 << 4).replace('$16$', '$262144$')), false);
  });

  it('makes 256-bit base64url tokens and stores only their SHA-256', () => {
    const token = newSessionToken();
    assert.match(token, SESSION_TOKEN_PATTERN);
    assert.notEqual(newSessionToken(), token);
    const hash = hashToken(token);
    assert.match(hash, /^[0-9a-f]{64}$/);
    assert.equal(tokenHashesEqual(hash, hashToken(token)), true);
    assert.equal(tokenHashesEqual(hash, hashToken(newSessionToken())), false);
    assert.equal(tokenHashesEqual(hash, 'short'), false);
  });
});
