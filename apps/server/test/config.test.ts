import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { MAX_PARTITIONS } from '@repo/broker';
import { ConfigError, loadConfig, parseRoles } from '../src/config.ts';
import { freePort, TradewireProcess } from '@repo/test-support';

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
    assert.deepEqual(config.symbols, ['SOL', 'BTC', 'ETH']);
    assert.equal(config.feeRate, '0.0001');
    assert.equal(config.startingBalanceUsd, '10000');
    assert.equal(config.priceIntervalMs, 1000);
    assert.equal(config.priceSource, 'simulated');
    assert.equal(config.sessionTtlMs, 7 * 24 * 3_600_000);
    assert.ok(config.allowedOrigins.includes('http://localhost:3000'));
    assert.equal(config.historyRetentionEvents, 1000);
    assert.equal(config.historyRetentionMs, 24 * 3_600_000);
    assert.equal(config.pythTransport, 'stream');
    assert.equal(config.pythMaxConfRatio, '0.01');
    assert.deepEqual(config.pythFeedIds, {});
    assert.equal(config.maxPriceAgeMs, 10_000);
    assert.equal(config.ordersPerUserPerSecond, 20);
    assert.equal(config.metricsToken, undefined);
    assert.deepEqual(config.trustProxy, [], 'no proxy is trusted');
    assert.deepEqual(config.wsLimitExempt, [], 'nothing is exempt, loopback included');
    assert.deepEqual(config.wsLimits, {
      maxConnections: 20_000,
      maxConnectionsPerAddress: 200,
      maxQueuedRequests: 8,
      authConcurrency: 32,
      maxAuthWaiting: 256,
      sessionRecheckIntervalMs: 60_000,
    });
  });

  it('reads the proxy, exemption and gateway limits', () => {
    const config = loadConfig({
      TRUST_PROXY: '127.0.0.1, 10.0.0.0/8,2001:db8::/32',
      WS_LIMIT_EXEMPT: '127.0.0.1',
      WS_MAX_CONNECTIONS_PER_ADDRESS: '3',
      WS_MAX_CONNECTIONS: '100000',
      WS_MAX_QUEUED_REQUESTS: '4',
      AUTH_CONCURRENCY: '2',
      AUTH_MAX_WAITING: '5',
      SESSION_RECHECK_INTERVAL_MS: '1000',
    });
    assert.deepEqual(config.trustProxy, ['127.0.0.1', '10.0.0.0/8', '2001:db8::/32']);
    assert.deepEqual(config.wsLimitExempt, ['127.0.0.1']);
    assert.deepEqual(config.wsLimits, {
      maxConnections: 100_000,
      maxConnectionsPerAddress: 3,
      maxQueuedRequests: 4,
      authConcurrency: 2,
      maxAuthWaiting: 5,
      sessionRecheckIntervalMs: 1000,
    });
    assert.deepEqual(loadConfig({ TRUST_PROXY: '' }).trustProxy, []);
  });

  it('allows the Vite dev origins by default only when NODE_ENV=development', () => {
    const vite = 'http://localhost:5173';
    assert.equal(loadConfig({}).allowedOrigins.includes(vite), false);
    assert.equal(loadConfig({ NODE_ENV: 'production' }).allowedOrigins.includes(vite), false);
    const dev = loadConfig({ NODE_ENV: 'development' }).allowedOrigins;
    assert.ok(dev.includes(vite) && dev.includes('http://127.0.0.1:5173') && dev.includes('http://localhost:3000'));
    assert.deepEqual(loadConfig({ NODE_ENV: 'development', ALLOWED_ORIGINS: 'https://a.test' }).allowedOrigins, [
      'https://a.test',
    ]);
  });

  it('reads the hardening limits', () => {
    const config = loadConfig({
      MAX_PRICE_AGE_MS: '2500',
      ORDERS_PER_USER_PER_SECOND: '5',
      METRICS_TOKEN: 'a-long-metrics-token',
    });
    assert.equal(config.maxPriceAgeMs, 2500);
    assert.equal(config.ordersPerUserPerSecond, 5);
    assert.equal(config.metricsToken, 'a-long-metrics-token');
  });

  it('never echoes METRICS_TOKEN in an error', () => {
    assert.throws(
      () => loadConfig({ METRICS_TOKEN: 'short secret' }),
      (err: Error) => err.message.includes('METRICS_TOKEN') && !err.message.includes('short secret'),
    );
  });

  it('treats an empty variable as unset', () => {
    assert.equal(loadConfig({ REDIS_URL: '' }).redisUrl, undefined);
    // Not the working directory, whose every file the API would serve.
    assert.equal(loadConfig({ STATIC_DIR: '' }).staticDir, 'apps/web/dist');
    assert.equal(loadConfig({ STATIC_DIR: ' ' }).staticDir, 'apps/web/dist');
  });

  const bad: [string, string][] = [
    ['PORT', 'abc'],
    ['MAX_PRICE_AGE_MS', '0'],
    ['MAX_PRICE_AGE_MS', 'ten seconds'],
    ['MAX_PRICE_AGE_MS', '99999999999'],
    ['ORDERS_PER_USER_PER_SECOND', '0'],
    ['ORDERS_PER_USER_PER_SECOND', '2.5'],
    ['METRICS_TOKEN', 'short'],
    ['METRICS_TOKEN', 'a token with spaces in it'],
    ['PORT', '70000'],
    ['TRUST_PROXY', 'proxy.internal'],
    ['TRUST_PROXY', '10.0.0.0/33'],
    ['TRUST_PROXY', 'loopback'],
    ['WS_LIMIT_EXEMPT', '127.0.0.1,localhost'],
    ['WS_MAX_CONNECTIONS_PER_ADDRESS', '0'],
    ['WS_MAX_CONNECTIONS', '0'],
    ['WS_MAX_QUEUED_REQUESTS', 'eight'],
    ['AUTH_CONCURRENCY', '0'],
    ['AUTH_MAX_WAITING', '-1'],
    ['SESSION_RECHECK_INTERVAL_MS', '10'],
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
    ['HOST', ' '],
    ['HOST', '127.0.0.1, 0.0.0.0'],
    ['DATA_DIR', ''],
    ['DATA_DIR', '  '],
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
    ['SYMBOLS', 'SOL,SOL'],
    ['SYMBOLS', ','],
    ['PYTH_HERMES_URL', 'http://hermes.pyth.network'],
    ['PYTH_HERMES_URL', 'http://10.0.0.5:8080'],
    ['PYTH_TRANSPORT', 'websocket'],
    ['PYTH_MAX_CONF_RATIO', '0'],
    ['PYTH_MAX_CONF_RATIO', '0.000'],
    ['PYTH_MAX_CONF_RATIO', '1e-2'],
    ['PYTH_MAX_CONF_RATIO', '-0.01'],
    ['PYTH_FEED_IDS', 'SOL'],
    ['PYTH_FEED_IDS', 'SOL=0x1234'],
    ['PYTH_FEED_IDS', `sol=0x${'ab'.repeat(32)}`],
    ['PYTH_FEED_IDS', `SOL=0x${'ab'.repeat(32)},SOL=0x${'cd'.repeat(32)}`],
    ['PYTH_FEED_IDS', `DOGE=0x${'ab'.repeat(32)}`],
    // Refused only once the API was up, with a message naming no variable.
    ['FEE_RATE', '1'],
    ['FEE_RATE', '5'],
    ['SYMBOLS', 'USD,SOL'],
    // Blocked every browser origin, where an empty value means the defaults.
    ['ALLOWED_ORIGINS', ' , '],
    // No host: the client fell back to its own default.
    ['REDIS_URL', 'redis://'],
  ];
  for (const [name, value] of bad) {
    it(`rejects ${name}=${value} with a message naming it`, () => {
      assert.throws(
        () => loadConfig({ [name]: value }),
        (err: unknown) => err instanceof ConfigError && err.message.includes(name),
      );
    });
  }

  it('takes up to 100 symbols, and refuses more: a portfolio event carries at most 100 positions', () => {
    const symbols = (n: number) => Array.from({ length: n }, (_, i) => `S${i}`).join(',');
    assert.equal(loadConfig({ SYMBOLS: symbols(100) }).symbols.length, 100);
    assert.throws(
      () => loadConfig({ SYMBOLS: symbols(101) }),
      (err: unknown) => err instanceof ConfigError && /SYMBOLS.*at most 100 symbols/s.test(err.message),
    );
  });

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

  it('Hermes over plain http only on a loopback host, where no key crosses a network', () => {
    for (const url of [
      'https://pyth.dourolabs.app/hermes',
      'http://127.0.0.1:8080',
      'http://localhost:1',
      'http://[::1]:2',
    ]) {
      assert.equal(loadConfig({ PYTH_HERMES_URL: url }).pythHermesUrl, url);
    }
    assert.throws(
      () => loadConfig({ PYTH_HERMES_URL: 'http://hermes.pyth.network' }),
      /PYTH_HERMES_URL must start with https:\/\//,
    );
  });

  it('PYTH_FEED_IDS gives a feed id per symbol, 0x optional', () => {
    const btc = 'e62df6c8b4a85fe1a67db44dc12de5db330f7ac66b72dc658afedf0f4a415b43';
    const eth = '0xff61491a931112ddf1bd8147cd1b641375f79f5825126d665480874634fd0ace';
    assert.deepEqual(loadConfig({ PYTH_FEED_IDS: `BTC=${btc}, ETH=${eth}` }).pythFeedIds, { BTC: btc, ETH: eth });
    assert.throws(
      () => loadConfig({ SYMBOLS: 'SOL', PYTH_FEED_IDS: `BTC=${btc}` }),
      /PYTH_FEED_IDS names BTC, which SYMBOLS \(SOL\) does not list/,
    );
    assert.equal(loadConfig({ PYTH_TRANSPORT: 'poll', PYTH_MAX_CONF_RATIO: '0.005' }).pythMaxConfRatio, '0.005');
  });

  it('never echoes the Pyth API key', () => {
    // A valid key is accepted; only its presence matters here.
    assert.equal(loadConfig({ PYTH_API_KEY: 'secret' }).pythApiKey, 'secret');
  });
});

describe('WS_WORKERS', () => {
  it('defaults to one worker, takes a count, and reads "auto" as one per core', () => {
    assert.equal(loadConfig({}).wsWorkers, 1);
    assert.equal(loadConfig({ WS_WORKERS: '8' }).wsWorkers, 8);
    assert.equal(loadConfig({ WS_WORKERS: 'auto' }).wsWorkers, availableParallelism());
  });

  it('refuses anything else with a ConfigError naming the variable', () => {
    for (const value of ['0', '-1', '1.5', 'all', '257', '99999']) {
      assert.throws(
        () => loadConfig({ WS_WORKERS: value }),
        (err: unknown) => err instanceof ConfigError && /WS_WORKERS must be/.test(err.message),
        value,
      );
    }
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

  it('refuses more than one gateway worker without a shared broker and database, saying why', () => {
    const inProcess = { redisUrl: undefined, databaseUrl: 'postgres://x', wsWorkers: 2 };
    assert.throws(() => parseRoles(['ws'], inProcess), /WS_WORKERS=2 runs 2 gateway processes, which needs a broker/);
    assert.throws(() => parseRoles([], { ...inProcess, databaseUrl: undefined }), /needs a broker .* and DATABASE_URL/);
    const shared = { redisUrl: 'redis://x', databaseUrl: 'postgres://x', wsWorkers: 2 };
    assert.deepEqual([...parseRoles(['ws'], shared)], ['ws']);
    assert.deepEqual([...parseRoles(['ws'], { ...shared, redisUrl: undefined, redisClusterNodes: ['h:1'] })], ['ws']);
    // Without the ws role there are no gateway workers to start.
    assert.deepEqual([...parseRoles(['api'], { ...shared, wsWorkers: 4 })], ['api']);
  });

  it('refuses one port for the API and the gateway of one process, naming both variables', () => {
    const both = { redisUrl: 'redis://x', databaseUrl: 'postgres://x', port: 4000, wsPort: 4000 };
    assert.throws(() => parseRoles([], both), /PORT and WS_PORT are both 4000/);
    assert.throws(() => parseRoles(['api', 'ws'], both), /PORT and WS_PORT/);
    // Separate processes may share a number (on different hosts, or one role each).
    assert.deepEqual([...parseRoles(['api'], both)], ['api']);
    assert.deepEqual([...parseRoles(['ws', 'worker'], both)].sort(), ['worker', 'ws']);
    // Port 0 is a free port for each.
    assert.equal(parseRoles([], { ...both, port: 0, wsPort: 0 }).size, 3);
  });

  it('refuses an unknown role', () => {
    assert.throws(() => parseRoles(['gateway'], { redisUrl: 'r', databaseUrl: 'p' }), /unknown role "gateway"/);
  });
});

describe('the launcher with a bad environment', () => {
  it('exits 1 with the reason when its HTTP port is taken, having undone what it started', async () => {
    const holder = createServer();
    await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve));
    const { port } = holder.address() as AddressInfo;
    const dataDir = mkdtempSync(join(tmpdir(), 'tw-port-taken-'));
    try {
      const child = new TradewireProcess([], {
        PORT: String(port),
        WS_PORT: String(await freePort()),
        DATA_DIR: dataDir,
      });
      const exit = await child.exited;
      assert.equal(exit.code, 1);
      assert.match(child.stderr.join('\n'), new RegExp(`failed to start: listen EADDRINUSE.*:${port}`));
      assert.ok(
        child.lines.some((line) => line.includes('gateway closed')),
        'the gateway it had started was closed',
      );
      assert.equal(
        child.lines.some((line) => line.includes('tradewire ready')),
        false,
      );
    } finally {
      holder.close();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });

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
