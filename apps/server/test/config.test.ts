import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError, loadConfig, parseRoles } from '../src/config.ts';

describe('loadConfig', () => {
  it('gives the documented defaults on an empty environment', () => {
    const config = loadConfig({});
    assert.equal(config.port, 3000);
    assert.equal(config.wsPort, 3001);
    assert.equal(config.redisUrl, undefined);
    assert.equal(config.databaseUrl, undefined);
    assert.equal(config.dataDir, './data');
    assert.deepEqual(config.symbols, ['SOL']);
    assert.equal(config.feeRate, '0.0001');
    assert.equal(config.startingBalanceUsd, '10000');
    assert.equal(config.priceIntervalMs, 1000);
    assert.equal(config.priceSource, 'simulated');
    assert.equal(config.sessionTtlMs, 7 * 24 * 3_600_000);
    assert.ok(config.allowedOrigins.includes('http://localhost:3000'));
  });

  it('treats an empty variable as unset', () => {
    assert.equal(loadConfig({ REDIS_URL: '' }).redisUrl, undefined);
  });

  const bad: [string, string][] = [
    ['PORT', 'abc'],
    ['PORT', '70000'],
    ['WS_PORT', '-1'],
    ['REDIS_URL', 'localhost:6379'],
    ['DATABASE_URL', 'mysql://x'],
    ['SYMBOLS', 'sol'],
    ['FEE_RATE', '1e-4'],
    ['STARTING_BALANCE_USD', '-5'],
    ['PRICE_SOURCE', 'random'],
    ['PRICE_INTERVAL_MS', '10'],
    ['PYTH_HERMES_URL', 'ftp://x'],
    ['ALLOWED_ORIGINS', 'example.com'],
    ['LOG_LEVEL', 'loud'],
    ['SESSION_TTL_HOURS', '0'],
  ];
  for (const [name, value] of bad) {
    it(`rejects ${name}=${value} with a message naming it`, () => {
      assert.throws(
        () => loadConfig({ [name]: value }),
        (err: unknown) => err instanceof ConfigError && err.message.includes(name),
      );
    });
  }

  it('never echoes the Pyth API key', () => {
    // A valid key is accepted; only its presence matters here.
    assert.equal(loadConfig({ PYTH_API_KEY: 'secret' }).pythApiKey, 'secret');
  });
});

describe('parseRoles', () => {
  it('runs every role when none is named', () => {
    assert.deepEqual([...parseRoles([], {redisUrl: undefined, databaseUrl: undefined})].sort(), ['api', 'worker', 'ws']);
  });

  it('refuses split roles without Redis and PostgreSQL, naming what is missing', () => {
    assert.throws(() => parseRoles(['api'], { redisUrl: undefined, databaseUrl: undefined }), /REDIS_URL and DATABASE_URL/);
    assert.throws(() => parseRoles(['ws'], { redisUrl: 'redis://x', databaseUrl: undefined }), /DATABASE_URL/);
    assert.deepEqual([...parseRoles(['ws'], { redisUrl: 'redis://x', databaseUrl: 'postgres://x' })], ['ws']);
  });

  it('refuses an unknown role', () => {
    assert.throws(() => parseRoles(['gateway'], { redisUrl: 'r', databaseUrl: 'p' }), /unknown role "gateway"/);
  });
});
