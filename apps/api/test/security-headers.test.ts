import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { fastify } from 'fastify';
import helmet, { type HelmetOptions } from 'helmet';
import { createSecurityHeaders, registerSecurityHeaders } from '../src/security-headers.ts';

/** The headers of `GET /` on an app whose security headers come from `setHeaders`. */
async function headersOf(setHeaders: Parameters<typeof registerSecurityHeaders>[1]) {
  const app = fastify();
  registerSecurityHeaders(app, setHeaders);
  app.get('/', () => ({ ok: true }));
  try {
    const { headers } = await app.inject({ method: 'GET', url: '/' });
    delete headers.date;
    return headers;
  } finally {
    await app.close();
  }
}

describe('security headers', () => {
  it('sets, from static options set once, exactly the headers helmet sets per request', async () => {
    const cases: HelmetOptions[] = [
      {},
      { contentSecurityPolicy: { directives: { 'connect-src': ["'self'", 'wss://ws.example.test'] } } },
      { strictTransportSecurity: { maxAge: 60 }, xFrameOptions: { action: 'deny' }, referrerPolicy: false },
    ];
    for (const options of cases) {
      const replayed = await headersOf(createSecurityHeaders(options));
      assert.deepEqual(replayed, await headersOf(helmet(options)));
      assert.equal(replayed['x-content-type-options'], 'nosniff');
    }
  });

  it('fails an answer whose dynamic directive is bad instead of sending it without headers', async () => {
    const app = fastify();
    registerSecurityHeaders(app, {
      contentSecurityPolicy: {
        directives: {
          'connect-src': ["'self'", (request) => (request.headers['x-bad'] ? 'ws://x; script-src *' : 'ws://x')],
        },
      },
    });
    app.get('/', () => ({ ok: true }));
    try {
      const good = await app.inject({ method: 'GET', url: '/' });
      assert.equal(good.statusCode, 200);
      assert.match(good.headers['content-security-policy'] as string, /connect-src 'self' ws:\/\/x(;|$)/);
      assert.equal(good.headers['x-content-type-options'], 'nosniff');
      const bad = await app.inject({ method: 'GET', url: '/', headers: { 'x-bad': '1' } });
      assert.equal(bad.statusCode, 500);
      assert.doesNotMatch(bad.body, /ok/);
    } finally {
      await app.close();
    }
  });
});
