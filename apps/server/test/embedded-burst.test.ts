import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { hashToken, newSessionToken, openDatabase } from '@repo/db';
import { TestClient, TradewireProcess } from '@repo/test-support';

/**
 * The embedded mode (one process, PGlite) under a burst of orders well beyond what it places
 * per second: PGlite runs one transaction at a time, so the orders must queue and slow down,
 * never fail, and every order event must still reach its user's socket once, in seq order.
 */

const USERS = 20;
const ORDERS_PER_USER = 15;

interface Placed {
  status: number;
  body: { orderId?: number; seq?: number; error?: { code?: string } };
}

describe('embedded mode under an order burst', { timeout: 400_000 }, () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'tradewire-burst-'));
  const users: { userId: number; token: string }[] = [];
  let server: TradewireProcess;
  let api = '';
  let ws = '';

  before(async () => {
    // Sessions are written straight into the database: a login per user would spend the
    // password hash's deliberate slowness on every one of them.
    const db = await openDatabase({ dataDir });
    try {
      for (let i = 0; i < USERS; i++) {
        const { userId } = await db.users.create({
          username: `burst-${i}`,
          passwordHash: 'test$no-login',
          balances: [{ asset: 'USD', available: '100000' }],
          // Half without a SOL position: their first order opens it (the statement-by-statement path).
          positionAssets: i % 2 === 0 ? ['SOL'] : [],
        });
        const token = newSessionToken();
        await db.sessions.create({ userId, tokenHash: hashToken(token), expiresAt: new Date(Date.now() + 3_600_000) });
        users.push({ userId, token });
      }
    } finally {
      await db.close();
    }
    server = new TradewireProcess(
      [],
      { DATA_DIR: dataDir, HOST: '127.0.0.1', PORT: '0', WS_PORT: '0', SYMBOLS: 'SOL', PRICE_INTERVAL_MS: '200' },
      // Starting the all-in-one process (tsx, PGlite) takes minutes on a loaded machine.
      { readyTimeoutMs: 180_000 },
    );
    const ready = await server.ready;
    api = ready.api!;
    ws = ready.ws!;
    // The simulated feed's first tick: orders need a price.
    for (let i = 0; i < 300; i++) {
      const prices = (await (await fetch(`${api}/prices`)).json()) as { prices?: { symbol: string }[] };
      if (JSON.stringify(prices).includes('"SOL"') && JSON.stringify(prices).includes('price')) break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  });

  after(async () => {
    await server?.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it(`queues ${USERS * ORDERS_PER_USER} concurrent orders: 201 or 429, no 5xx, each event once, in order`, async () => {
    const sockets = await Promise.all(
      users.map(async ({ userId, token }) => {
        const client = await TestClient.connect(ws);
        assert.deepEqual(await client.request({ type: 'auth', token }, 10_000), { type: 'auth_ok', userId, id: 'r1' });
        assert.equal((await client.request({ type: 'subscribe', channel: 'orders' }, 10_000)).type, 'subscribed');
        return client;
      }),
    );
    try {
      const body = JSON.stringify({ symbol: 'SOL', side: 'buy', size: '0.01' });
      const placed = await Promise.all(
        users.flatMap(({ token }, user) =>
          Array.from({ length: ORDERS_PER_USER }, async (): Promise<Placed & { user: number }> => {
            const res = await fetch(`${api}/orders`, {
              method: 'POST',
              headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
              body,
            });
            return { user, status: res.status, body: (await res.json()) as Placed['body'] };
          }),
        ),
      );
      const statuses = new Map<number, number>();
      for (const p of placed) statuses.set(p.status, (statuses.get(p.status) ?? 0) + 1);
      for (const p of placed) {
        assert.ok(p.status === 201 || p.status === 429, `HTTP ${p.status}: ${JSON.stringify(p.body)}`);
        if (p.status === 429) assert.equal(p.body.error?.code, 'rate_limited');
      }
      assert.ok((statuses.get(201) ?? 0) > 0, `no order placed: ${JSON.stringify([...statuses])}`);

      for (const [user, client] of sockets.entries()) {
        const mine = placed.filter((p) => p.user === user && p.status === 201).map((p) => p.body.orderId!);
        const events = () => client.received.filter((m) => m.type === 'order_filled');
        const deadline = Date.now() + 60_000;
        while (events().length < mine.length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
        await client.barrier(10_000);
        const received = events() as unknown as { orderId: number; seq: number }[];
        assert.deepEqual(
          received.map((e) => e.orderId).sort((a, b) => a - b),
          [...mine].sort((a, b) => a - b),
          `user ${user}: every placed order's event exactly once`,
        );
        const seqs = received.map((e) => e.seq);
        assert.deepEqual(
          seqs,
          [...seqs].sort((a, b) => a - b),
          `user ${user}: events in seq order`,
        );
      }
    } finally {
      await Promise.all(sockets.map((s) => s.close()));
    }
  });
});
