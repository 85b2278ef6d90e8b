import http from 'node:http';
import { connectRedisBroker, createPriceStore } from '@repo/broker';
import { createSessionStore, openDatabase } from '@repo/db';
import { sql } from 'drizzle-orm';
import { median } from '../lib/stats.ts';
import type { SeededUser } from '../servers/sessions.ts';

/** Median ms of each piece of one order, each timed alone, one at a time (no load). */
export interface OrderBreakdown {
  samples: number;
  /** A trivial statement: one PostgreSQL round trip. */
  pgRoundTrip: number;
  /** A one-row insert committed on its own: a round trip plus the WAL flush of the commit. */
  pgCommit: number;
  /** The bearer token's session lookup (one statement on the lookup pool). */
  sessionLookup: number;
  /** A Redis GET of the latest price (the per-user rate limit costs one Redis round trip too). */
  redisGet: number;
  /** `db.orders.place`: the order as the API places it (a read and a guarded write). */
  place: number;
  /** POST /orders over HTTP against the running API, one at a time. */
  httpPost: number;
}

/**
 * Times the pieces of an order one after another on an idle stand, each `samples` times, on
 * the ladder's database, Redis and API: what docs/benchmarks.md adds up to "where each
 * millisecond goes".
 */
export async function measureBreakdown(options: {
  databaseUrl: string;
  redisUrl: string;
  apiUrl: string;
  users: SeededUser[];
  samples: number;
}): Promise<OrderBreakdown> {
  const db = await openDatabase({ url: options.databaseUrl, poolSize: 2 });
  const broker = await connectRedisBroker(options.redisUrl);
  const time = async (run: (i: number) => Promise<unknown>) => {
    const took: number[] = [];
    for (let i = 0; i < options.samples; i++) {
      const started = performance.now();
      await run(i);
      took.push(performance.now() - started);
    }
    return Math.round(median(took) * 100) / 100;
  };
  try {
    const sessions = createSessionStore(db);
    const prices = createPriceStore(broker);
    const user = (i: number) => options.users[i % options.users.length]!;
    // A table of its own in the scratch database (a temporary one would live on one pool connection).
    await db.drizzle.execute(sql`create table if not exists bench_commit_probe (n int)`);
    const pgRoundTrip = await time(() => db.drizzle.execute(sql`select 1`));
    const pgCommit = await time((i) => db.drizzle.execute(sql`insert into bench_commit_probe values (${i})`));
    const sessionIds = new Map<number, string>();
    const sessionLookup = await time(async (i) => {
      const session = await sessions.verify(user(i).token);
      if (!session) throw new Error(`user ${user(i).userId} has no active session`);
      sessionIds.set(i, session.sessionId);
    });
    const redisGet = await time(() => prices.getPrice('SOL'));
    const place = await time((i) =>
      db.orders.place({
        userId: user(i).userId,
        symbol: 'SOL',
        quoteAsset: 'USD',
        side: 'buy',
        size: '0.01',
        price: '231.45',
        feeRate: '0.0001',
        // As the API places it: the read and the write check the session too.
        session: { id: sessionIds.get(i)!, at: new Date() },
      }),
    );
    const body = JSON.stringify({ symbol: 'SOL', side: 'buy', size: '0.01' });
    // node:http on one kept-alive connection, as the ladder's client sends: fetch (undici) adds
    // 1.5-3 ms of its own per request on this machine, which is not the server's time.
    const api = new URL(options.apiUrl);
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const post = (token: string) =>
      new Promise<number>((resolve, reject) => {
        const req = http.request(
          {
            host: api.hostname,
            port: api.port,
            path: '/orders',
            method: 'POST',
            agent,
            headers: {
              'content-type': 'application/json',
              'content-length': Buffer.byteLength(body),
              authorization: `Bearer ${token}`,
            },
          },
          (res) => {
            res.resume();
            res.on('end', () => resolve(res.statusCode ?? 0));
          },
        );
        req.on('error', reject);
        req.end(body);
      });
    // The steady state: each user's session already in the API's cache, as after a user's
    // first order (the ladder's users place several each).
    for (let i = 0; i < options.samples; i++) await post(user(i).token);
    const httpPost = await time(async (i) => {
      const status = await post(user(i).token);
      if (status !== 201) throw new Error(`POST /orders answered ${status}`);
    }).finally(() => agent.destroy());
    return { samples: options.samples, pgRoundTrip, pgCommit, sessionLookup, redisGet, place, httpPost };
  } finally {
    await broker.close();
    await db.close();
  }
}
