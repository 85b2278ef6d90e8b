/**
 * Measures (not a test: run by hand) POST /auth/login at the production password-hash cost: a real HTTP server on a
 * fresh PostgreSQL database (`TEST_PG_ADMIN_URL`, default the test server), 100 sequential
 * logins of one user, then 100 of an unknown username. Prints p50 / p95 / max in ms.
 *
 *   npx tsx apps/api/test/measure-login-latency.ts
 */
import { MemoryBroker } from '@repo/broker';
import { openDatabase } from '@repo/db';
import { createTestDatabase } from '@repo/test-support';
import { createApi } from '../src/index.ts';

const ROUNDS = 100;
const database = await createTestDatabase('tw_login_latency');
const db = await openDatabase({ url: database.url });
const broker = new MemoryBroker();
const api = createApi({
  db,
  broker,
  rateLimits: {
    perUsernameAndAddress: { max: 1000, windowMs: 60_000 },
    perUsername: { max: 1000, windowMs: 60_000 },
    perAddress: { max: 1000, windowMs: 60_000 },
  },
});
try {
  const base = await api.app.listen({ port: 0, host: '127.0.0.1' });
  const post = (username: string, path: string) =>
    fetch(`${base}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username, password: 'password123' }),
    });
  if ((await post('latency_user', '/auth/register')).status !== 201) throw new Error('register failed');
  for (const [label, username, expected] of [
    ['login, right password', 'latency_user', 200],
    ['login, unknown username', 'nobody_here', 401],
  ] as const) {
    const times: number[] = [];
    for (let i = 0; i < ROUNDS; i++) {
      const start = performance.now();
      const response = await post(username, '/auth/login');
      await response.arrayBuffer();
      times.push(performance.now() - start);
      if (response.status !== expected) throw new Error(`${label}: ${response.status}`);
    }
    times.sort((a, b) => a - b);
    const at = (q: number) => times[Math.min(times.length - 1, Math.floor(q * times.length))]!.toFixed(1);
    console.log(`${label}: p50 ${at(0.5)} ms, p95 ${at(0.95)} ms, max ${at(1)} ms (${ROUNDS} sequential)`);
  }
} finally {
  await api.close();
  await db.close();
  await broker.close();
  await database.drop();
}
