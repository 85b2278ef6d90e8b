import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { fastify } from 'fastify';
import { registerSecurityHeaders } from '../src/security-headers.ts';

describe('security headers', () => {
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
