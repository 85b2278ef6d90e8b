import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MAX_PARTITIONS } from '@repo/broker';
import { ConfigError, loadConfig, parseRoles } from '../src/config.ts';
import { TradewireProcess } from '@repo/test-support';

describe('loadConfig', () => {
  it('gives the documented defaults on an empty environment', () => {
    const config = loadConfig({});
    assert.equal(config.port, 3000);
    assert.equal(config.wsPort, 3001);
    assert.equal(config.redisUrl, undefined);
    assert.equal(config.redisClusterNodes, undefined);
    assert.equal(config.redisPartitions, 16);
    assert.equal(config.databaseUrl, undefined);
    assert.equal(config.dataDir, './data');
    assert.deepEqual(config.symbols, ['SOL']);
    assert.equal(config.feeRate, '0.0001');
    assert.equal(config.startingBalanceUsd, '10000');
    assert.equal(config.priceIntervalMs, 1000);
    assert.equal(config.priceSource, 'simulated');
    assert.equal(config.sessionTtlMs, 7 * 24 * 3_600_000);
    assert.ok(config.allowedOrigins.includes('http://localhost:3000'));
    assert.equal(config.historyRetentionEvents, 1000);
    assert.equal(config.historyRetentionMs, 24 * 3_600_000);
  });

  it('treats an empty variable as unset', () => {
    assert.equal(loadConfig({ REDIS_URL: '' }).redisUrl, undefined);
  });

  const bad: [string, string][] = [
    ['PORT', 'abc'],
    ['PORT', '70000'],
    ['WS_PORT', '-1'],
    ['HISTORY_RETENTION_EVENTS', '0'],
    ['HISTORY_RETENTION_SECONDS', 'a day'],
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
    ['SESSION_TTL_HOURS', 'a week'],
    ['SESSION_TTL_HOURS', '99999999'],
    ['SESSION_TTL_SECONDS', '0'],
    ['SESSION_TTL_SECONDS', '1.5'],
    ['PORT', '3000.5'],
    ['PORT', ' 3000'],
    ['WS_PORT', '65536'],
    ['HOST', ''],
    ['DATA_DIR', ''],
    ['REDIS_URL', 'http://127.0.0.1:6379'],
    ['DATABASE_URL', 'not a url'],
    ['SYMBOLS', 'SOL,BTC!'],
    ['SYMBOLS', 'A_VERY_LONG_SYMBOL_NAME'],
    ['FEE_RATE', '0.1.2'],
    ['FEE_RATE', '01'],
    ['STARTING_BALANCE_USD', 'lots'],
    ['PRICE_INTERVAL_MS', '1.5'],
    ['PRICE_INTERVAL_MS', '99999999999'],
    ['PRICE_SEED', 'abc'],
    ['PRICE_SEED', '12345678901'],
    ['PYTH_HERMES_URL', 'hermes.pyth.network'],
    ['ALLOWED_ORIGINS', 'https://ok.example,javascript:alert(1)'],
    ['ALLOWED_ORIGINS', 'https://app.example/path'],
    ['WS_PUBLIC_URL', 'http://example.com'],
    ['LOG_LEVEL', 'INFO'],
    ['REDIS_CLUSTER_NODES', 'redis://10.0.0.5:7000'],
    ['REDIS_CLUSTER_NODES', '10.0.0.5'],
    ['REDIS_CLUSTER_NODES', '10.0.0.5:70000'],
    ['REDIS_CLUSTER_NODES', '10.0.0.5:0'],
    ['REDIS_CLUSTER_NODES', 'a:7000,b'],
    ['REDIS_CLUSTER_NODES', ','],
  ];
  for (const [name, value] of bad) {
    it(`rejects ${name}=${value} with a message naming it`, () => {
      assert.throws(
        () => loadConfig({ [name]: value }),
        (err: unknown) => err instanceof ConfigError && err.message.includes(name),
      );
    });
  }

  it('reads REDIS_CLUSTER_NODES as host:port addresses, with 16 partitions unless REDIS_PARTITIONS says', () => {
    const config = loadConfig({ REDIS_CLUSTER_NODES: ' 10.0.0.5:7000, redis-b.internal:7001,[::1]:7002 ' });
    assert.deepEqual(config.redisClusterNodes, ['10.0.0.5:7000', 'redis-b.internal:7001', '[::1]:7002']);
    assert.equal(config.redisUrl, undefined);
    assert.equal(config.redisPartitions, 16);
    assert.equal(loadConfig({ REDIS_CLUSTER_NODES: 'a:1', REDIS_PARTITIONS: '64' }).redisPartitions, 64);
    assert.equal(
      loadConfig({ REDIS_CLUSTER_NODES: 'a:1', REDIS_PARTITIONS: String(MAX_PARTITIONS) }).redisPartitions,
      MAX_PARTITIONS,
    );
    for (const bad of ['0', String(MAX_PARTITIONS + 1), '1.5', 'many']) {
      assert.throws(
        () => loadConfig({ REDIS_CLUSTER_NODES: 'a:1', REDIS_PARTITIONS: bad }),
        (err: unknown) => err instanceof ConfigError && err.message.includes('REDIS_PARTITIONS'),
      );
    }
  });

  it('refuses REDIS_URL and REDIS_CLUSTER_NODES together, naming both', () => {
    assert.throws(
      () => loadConfig({ REDIS_URL: 'redis://127.0.0.1:6379', REDIS_CLUSTER_NODES: '127.0.0.1:7000' }),
      (err: unknown) =>
        err instanceof ConfigError && err.message.includes('REDIS_URL') && err.message.includes('REDIS_CLUSTER_NODES'),
    );
  });

  it('refuses REDIS_PARTITIONS without a Redis Cluster: the other modes keep the design channels', () => {
    for (const env of [{}, { REDIS_URL: 'redis://127.0.0.1:6379' }]) {
      assert.throws(
        () => loadConfig({ ...env, REDIS_PARTITIONS: '8' }),
        (err: unknown) =>
          err instanceof ConfigError &&
          err.message.includes('REDIS_PARTITIONS') &&
          err.message.includes('REDIS_CLUSTER_NODES'),
      );
    }
  });

  it('names every offending variable at once', () => {
    assert.throws(
      () => loadConfig({ PORT: 'x', LOG_LEVEL: 'loud', FEE_RATE: '-1' }),
      (err: unknown) =>
        err instanceof ConfigError && ['PORT', 'LOG_LEVEL', 'FEE_RATE'].every((name) => err.message.includes(name)),
    );
  });

  it('SESSION_TTL_SECONDS overrides SESSION_TTL_HOURS (short sessions for tests and drills)', () => {
    assert.equal(loadConfig({ SESSION_TTL_SECONDS: '5', SESSION_TTL_HOURS: '2' }).sessionTtlMs, 5000);
    assert.equal(loadConfig({ SESSION_TTL_HOURS: '2' }).sessionTtlMs, 2 * 3_600_000);
    assert.equal(loadConfig({ SESSION_TTL_SECONDS: '' }).sessionTtlMs, 7 * 24 * 3_600_000);
  });

  it('never echoes the Pyth API key', () => {
    // A valid key is accepted; only its presence matters here.
    assert.equal(loadConfig({ PYTH_API_KEY: 'secret' }).pythApiKey, 'secret');
  });
});

describe('parseRoles', () => {
  it('runs every role when none is named', () => {
    assert.deepEqual([...parseRoles([], { redisUrl: undefined, databaseUrl: undefined })].sort(), [
      'api',
      'worker',
      'ws',
    ]);
  });

  it('refuses split roles without Redis and PostgreSQL, naming what is missing', () => {
    assert.throws(
      () => parseRoles(['api'], { redisUrl: undefined, databaseUrl: undefined }),
      /REDIS_URL and DATABASE_URL/,
    );
    assert.throws(() => parseRoles(['ws'], { redisUrl: 'redis://x', databaseUrl: undefined }), /DATABASE_URL/);
    assert.deepEqual([...parseRoles(['ws'], { redisUrl: 'redis://x', databaseUrl: 'postgres://x' })], ['ws']);
  });

  it('accepts a Redis Cluster instead of REDIS_URL for split roles', () => {
    const cluster = { redisUrl: undefined, redisClusterNodes: ['127.0.0.1:7000'], databaseUrl: 'postgres://x' };
    assert.deepEqual([...parseRoles(['api'], cluster)], ['api']);
  });

  it('refuses an unknown role', () => {
    assert.throws(() => parseRoles(['gateway'], { redisUrl: 'r', databaseUrl: 'p' }), /unknown role "gateway"/);
  });
});

describe('the launcher with a bad environment', () => {
  it('stops at start with exit code 2 and a message naming the variable, before serving anything', async () => {
    const child = new TradewireProcess([], { WS_PORT: 'nope', FEE_RATE: '1e-4', DATA_DIR: '/nonexistent-never-used' });
    const exit = await child.exited;
    assert.equal(exit.code, 2);
    const stderr = child.stderr.join('\n');
    assert.match(stderr, /WS_PORT/);
    assert.match(stderr, /FEE_RATE/);
    assert.equal(
      child.lines.some((line) => line.includes('tradewire ready')),
      false,
    );
  });
});
