import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { after, before, describe, it } from 'node:test';
import { WebSocket } from 'ws';
import {
  REPO_ROOT,
  createTestCertificate,
  createTestDatabase,
  freePort,
  NginxServer,
  RedisServer,
  TestClient,
  TradewireProcess,
} from '@repo/test-support';

/**
 * The deployment of docs/deploy.md, run as written: nginx with docs/deploy/nginx.conf in front
 * of the API and two gateways (the launcher's own processes, TRUST_PROXY=127.0.0.1). Two
 * clients behind the proxy, from 127.0.0.2 and 127.0.0.3, must be limited separately by the
 * API and by the gateways, and an X-Forwarded-For a client forges, through the proxy or
 * straight to a service, must change nothing.
 */

const SITE = `${REPO_ROOT}docs/deploy/nginx.conf`;
/** Kept small so the gateway's cap is reached quickly. */
const CAP = 3;
/** The API's default login attempts per address and minute. */
const LOGINS_PER_ADDRESS = 60;
/** nginx's throwaway certificate; clients trust it as their CA. */
const certificate = createTestCertificate();

/** Opens a WebSocket and reports the upgrade's outcome: 101, or the refusal's status. */
function upgrade(
  url: string,
  localAddress: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; ws?: WebSocket }> {
  const ws = new WebSocket(url, { localAddress, headers, ca: certificate.cert });
  ws.on('error', () => {});
  return new Promise((resolve) => {
    ws.once('open', () => resolve({ status: 101, ws }));
    ws.once('unexpected-response', (req, res) => {
      resolve({ status: res.statusCode ?? 0 });
      res.resume();
      req.destroy();
    });
  });
}

/** A failed login from `localAddress` (an unknown user): its status, 401 or 429. */
function failedLogin(base: string, localAddress: string, headers: Record<string, string> = {}): Promise<number> {
  const body = JSON.stringify({ username: `nobody_${Math.random().toString(36).slice(2, 10)}`, password: 'wrong one' });
  return new Promise((resolve, reject) => {
    const request = base.startsWith('https:') ? httpsRequest : httpRequest;
    const req = request(
      `${base}/auth/login`,
      {
        method: 'POST',
        ca: certificate.cert,
        localAddress,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), ...headers },
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

describe('behind nginx (docs/deploy/nginx.conf)', () => {
  let redis: RedisServer;
  let database: Awaited<ReturnType<typeof createTestDatabase>>;
  let nginx: NginxServer;
  const processes: TradewireProcess[] = [];
  let apiUrl: string;
  let gatewayUrl: string;
  /** nginx's TLS server: `https://127.0.0.1:<port>`. */
  let proxiedUrl: string;
  const open: WebSocket[] = [];

  before(async () => {
    redis = await RedisServer.start();
    database = await createTestDatabase('proxy');
    const env = {
      REDIS_URL: redis.url,
      DATABASE_URL: database.url,
      TRUST_PROXY: '127.0.0.1',
      WS_MAX_CONNECTIONS_PER_ADDRESS: String(CAP),
    };
    const [apiPort, gateway1, gateway2] = [await freePort(), await freePort(), await freePort()];
    processes.push(new TradewireProcess(['api'], { ...env, PORT: String(apiPort) }));
    for (const port of [gateway1, gateway2])
      processes.push(new TradewireProcess(['ws'], { ...env, WS_PORT: String(port) }));
    const ready = await Promise.all(processes.map((p) => p.ready));
    apiUrl = ready[0]!.api!;
    gatewayUrl = ready[1]!.ws!;
    nginx = await NginxServer.start({
      site: readFileSync(SITE, 'utf8'),
      replace: {
        'server 10.0.0.11:3000;': `server 127.0.0.1:${apiPort};`,
        'server 10.0.0.12:3000;': `server 127.0.0.1:${apiPort};`,
        'server 10.0.0.11:3001;': `server 127.0.0.1:${gateway1};`,
        'server 10.0.0.12:3001;': `server 127.0.0.1:${gateway2};`,
        '/etc/ssl/tradewire/fullchain.pem': certificate.certPath,
        '/etc/ssl/tradewire/privkey.pem': certificate.keyPath,
      },
    });
    proxiedUrl = `https://127.0.0.1:${nginx.ports[1]}`;
  });

  after(async () => {
    for (const ws of open) ws.terminate();
    await nginx?.stop();
    await Promise.all(processes.map((p) => p.stop()));
    await redis?.stop();
    await database?.drop();
    certificate.remove();
  });

  it('gives each client behind the proxy its own gateway connection cap; forged headers do not dodge it', async () => {
    const proxied = `${proxiedUrl.replace('https://', 'wss://')}/ws`;
    const statuses = async (url: string, from: string, count: number, headers: Record<string, string> = {}) => {
      const out: number[] = [];
      for (let i = 0; i < count; i++) {
        const result = await upgrade(url, from, headers);
        if (result.ws) open.push(result.ws);
        out.push(result.status);
      }
      return out;
    };
    const allowed = Array<number>(CAP).fill(101);

    // Client A fills its slots; a header it writes itself does not make it someone else.
    assert.deepEqual(await statuses(proxied, '127.0.0.2', CAP + 1), [...allowed, 429]);
    assert.deepEqual(await statuses(proxied, '127.0.0.2', 1, { 'x-forwarded-for': '203.0.113.7' }), [429]);
    // Client B, behind the same proxy, is another address with its own slots.
    assert.deepEqual(await statuses(proxied, '127.0.0.3', CAP + 1), [...allowed, 429]);
    // The sockets through the proxy work.
    const client = await TestClient.connect(proxied, { localAddress: '127.0.0.4', ca: certificate.cert });
    assert.equal((await client.request({ type: 'ping' })).type, 'pong');
    await client.close();

    // Straight to a gateway from a peer that is not a trusted proxy, the header is ignored:
    // two different "clients" are one address.
    const forged = (i: number) => ({ 'x-forwarded-for': `198.51.100.${i}` });
    const direct: number[] = [];
    for (let i = 0; i <= CAP; i++) direct.push(...(await statuses(gatewayUrl, '127.0.0.5', 1, forged(i))));
    assert.deepEqual(direct, [...allowed, 429]);
  });

  it("counts the API's login attempts per client behind the proxy; a forged X-Forwarded-For does not", async () => {
    const proxied = proxiedUrl;
    const first: number[] = [];
    for (let i = 0; i < LOGINS_PER_ADDRESS; i += 10) {
      first.push(...(await Promise.all(Array.from({ length: 10 }, () => failedLogin(proxied, '127.0.0.2')))));
    }
    assert.deepEqual([...new Set(first)], [401], 'every attempt within the limit is answered');
    assert.equal(await failedLogin(proxied, '127.0.0.2'), 429);
    assert.equal(await failedLogin(proxied, '127.0.0.2', { 'x-forwarded-for': '203.0.113.7' }), 429);
    // Another client behind the same proxy is not affected.
    assert.equal(await failedLogin(proxied, '127.0.0.3'), 401);
    // Straight to the API from the same host, a forged header does not buy a new budget.
    assert.equal(await failedLogin(apiUrl, '127.0.0.2', { 'x-forwarded-for': '198.51.100.1' }), 429);
    assert.equal(await failedLogin(apiUrl, '127.0.0.6', { 'x-forwarded-for': '127.0.0.2' }), 401);
  });

  it('does not serve /metrics through the proxy', async () => {
    const status = await new Promise<number>((resolve, reject) => {
      httpsRequest(`${proxiedUrl}/metrics`, { ca: certificate.cert }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      })
        .on('error', reject)
        .end();
    });
    assert.equal(status, 404);
  });

  it('answers plain HTTP with a redirect to HTTPS only', async () => {
    const res = await fetch(`${nginx.url}/orders`, { redirect: 'manual' });
    await res.body?.cancel();
    assert.equal(res.status, 301);
    assert.match(res.headers.get('location') ?? '', /^https:\/\/127\.0\.0\.1(?::\d+)?\/orders$/);
  });
});
