import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { count, eq } from 'drizzle-orm';
import { EVENT_KINDS } from '@repo/events';
import { waitFor } from '@repo/test-support';
import {
  createSessionStore,
  hashToken,
  newSessionToken,
  schema,
  IdempotencyKeyReusedError,
  SessionNotActiveError,
  UnknownUserError,
  UsernameTakenError,
  canonical,
  dec,
  type Database,
  type Decimal,
} from '../src/index.ts';

let userCounter = 0;

export async function newUser(db: Database, usd = '10000'): Promise<number> {
  const { userId } = await db.users.create({
    username: `user_${++userCounter}_${Math.random().toString(36).slice(2, 8)}`,
    passwordHash: 'scrypt$2$8$1$AA$AA',
    balances: [{ asset: 'USD', available: usd }],
    positionAssets: ['SOL'],
  });
  return userId;
}

export const order = (userId: number, side: 'buy' | 'sell', size: string, price: string | null) => ({
  userId,
  symbol: 'SOL',
  quoteAsset: 'USD',
  side,
  size,
  price,
  feeRate: '0.0001',
  session: null,
});

/** The same behaviour on both engines: one suite, run against each (database.pglite / database.postgres). */
export function databaseSuite(
  name: string,
  open: () => Promise<Database>,
  cleanup: () => Promise<void> = async () => {},
) {
  describe(`database on ${name}`, () => {
    let db: Database;
    before(async () => {
      db = await open();
    });
    after(async () => {
      await db?.close();
      await cleanup();
    });

    it('creates users with their starting balance and refuses a taken username', async () => {
      const { userId } = await db.users.create({
        username: `alice_${name}`,
        passwordHash: 'hash',
        balances: [{ asset: 'USD', available: '10000.00' }],
        positionAssets: ['SOL'],
      });
      assert.deepEqual(await db.users.findCredentials(`alice_${name}`), { userId, passwordHash: 'hash' });
      assert.equal(await db.users.findCredentials('nobody'), null);
      await assert.rejects(
        db.users.create({ username: `alice_${name}`, passwordHash: 'x', balances: [], positionAssets: [] }),
        UsernameTakenError,
      );
      assert.deepEqual(await db.portfolio.get(userId), {
        balances: [{ asset: 'USD', available: '10000', locked: '0' }],
        positions: [{ asset: 'SOL', size: '0', avgEntryPrice: '0' }],
        version: 0,
        orderSeq: 0,
      });
    });

    it('verifies sessions until they expire or are revoked; revocation is recorded for the relay', async () => {
      const userId = await newUser(db);
      const token = newSessionToken();
      let now = new Date('2030-01-01T00:00:00Z');
      const store = createSessionStore(db, { now: () => now });
      const expiresAt = new Date('2030-01-08T00:00:00Z');
      const { sessionId } = await db.sessions.create({ userId, tokenHash: hashToken(token), expiresAt });
      assert.deepEqual(await store.verify(token), { userId, sessionId, expiresAt });
      assert.equal(await store.verify(newSessionToken()), null, 'unknown token');
      assert.equal(await store.verify('not a token'), null, 'malformed token');
      now = new Date('2030-01-08T00:00:00Z');
      assert.equal(await store.verify(token), null, 'expired at expiresAt');
      now = new Date('2030-01-02T00:00:00Z');

      const backlogBefore = await db.outbox.backlog();
      assert.equal(await db.sessions.revoke(sessionId, now), true);
      assert.equal(await store.verify(token), null, 'revoked');
      assert.equal(await db.sessions.revoke(sessionId, now), false, 'second revoke is a no-op');
      assert.equal(await db.outbox.backlog(), backlogBefore + 1);
      const rows = await db.outbox.unpublished(10_000);
      const revoked = rows.filter((r) => r.kind === 'session_revoked' && r.userId === userId);
      assert.deepEqual(
        revoked.map((r) => r.payload),
        [{ sessionId }],
      );
    });

    it('deletes sessions past their expiry, in bounded batches, and keeps live ones', async () => {
      const userId = await newUser(db);
      const base = Date.parse('2031-01-01T00:00:00Z');
      const tokens = Array.from({ length: 5 }, () => newSessionToken());
      for (const [i, t] of tokens.entries()) {
        await db.sessions.create({ userId, tokenHash: hashToken(t), expiresAt: new Date(base + i * 1000) });
      }
      const store = createSessionStore(db, { now: () => new Date(base - 1) });
      // Sessions of other tests expire years earlier; clear them first.
      while ((await db.sessions.deleteExpired(new Date(base - 1), 1000)) > 0);
      assert.equal(await db.sessions.deleteExpired(new Date(base + 2000), 2), 2, 'a batch is bounded');
      assert.equal(await db.sessions.deleteExpired(new Date(base + 2000), 2), 1);
      assert.equal(await db.sessions.deleteExpired(new Date(base + 2000), 2), 0);
      assert.equal(await store.verify(tokens[2]!), null, 'deleted');
      assert.equal((await store.verify(tokens[3]!))?.userId, userId, 'not expired yet: kept');
      assert.equal((await store.verify(tokens[4]!))?.userId, userId);
    });

    it('fills a buy exactly and records order_filled then portfolio, valid against the event schemas', async () => {
      const userId = await newUser(db);
      const { order: filled, portfolioVersion } = await db.orders.place(order(userId, 'buy', '10', '231.45'));
      assert.equal(filled.status, 'filled');
      assert.equal(filled.executedPrice, '231.45');
      assert.equal(filled.executedSize, '10');
      assert.equal(filled.fee, '0.23145');
      assert.equal(filled.seq, 1);
      assert.equal(portfolioVersion, 1);
      assert.deepEqual(await db.portfolio.get(userId), {
        balances: [{ asset: 'USD', available: '7685.26855', locked: '0' }],
        positions: [{ asset: 'SOL', size: '10', avgEntryPrice: '231.45' }],
        version: 1,
        orderSeq: 1,
      });

      const events = (await db.outbox.unpublished(10_000)).filter((r) => r.userId === userId);
      assert.deepEqual(
        events.map((e) => [e.kind, e.position]),
        [
          ['order_filled', 1],
          ['portfolio', 1],
        ],
      );
      const fill = EVENT_KINDS.order_filled.schema.parse(events[0]!.payload);
      assert.deepEqual(fill, {
        userId,
        orderId: filled.orderId,
        side: 'buy',
        baseAsset: 'SOL',
        quoteAsset: 'USD',
        executedPrice: '231.45',
        executedSize: '10',
        fee: '0.23145',
        timestamp: filled.timestamp,
        seq: 1,
      });
      const portfolio = EVENT_KINDS.portfolio.schema.parse(events[1]!.payload);
      assert.deepEqual(portfolio, {
        userId,
        balances: [{ asset: 'USD', available: '7685.26855', locked: '0' }],
        positions: [{ asset: 'SOL', size: '10', avgEntryPrice: '231.45' }],
        timestamp: filled.timestamp,
        version: 1,
        orderSeq: 1,
      });
      assert.deepEqual(await db.getPortfolioEvent(userId).then((e) => e && { ...e, timestamp: 'x' }), {
        ...portfolio,
        timestamp: 'x',
      });
    });

    it('keeps avgEntryPrice weighted over buys, unchanged by sells, reset at zero', async () => {
      const userId = await newUser(db, '100000');
      await db.orders.place(order(userId, 'buy', '10', '231.45'));
      await db.orders.place(order(userId, 'buy', '5', '240'));
      let portfolio = await db.portfolio.get(userId);
      assert.deepEqual(portfolio?.positions, [{ asset: 'SOL', size: '15', avgEntryPrice: '234.3' }]);
      await db.orders.place(order(userId, 'sell', '5', '250'));
      portfolio = await db.portfolio.get(userId);
      assert.deepEqual(portfolio?.positions, [{ asset: 'SOL', size: '10', avgEntryPrice: '234.3' }]);
      await db.orders.place(order(userId, 'sell', '10', '200'));
      portfolio = await db.portfolio.get(userId);
      assert.deepEqual(portfolio?.positions, [{ asset: 'SOL', size: '0', avgEntryPrice: '0' }]);
      // 100000 − 2314.5 − 0.23145 − 1200 − 0.12 + 1250 − 0.125 + 2000 − 0.2
      assert.equal(portfolio?.balances[0]?.available, '99734.82355');
      assert.equal(portfolio?.version, 4);
    });

    it('stores and records rejections (short funds, short position, no price) without touching balances', async () => {
      const userId = await newUser(db, '100');
      const funds = await db.orders.place(order(userId, 'buy', '1', '100'));
      const position = await db.orders.place(order(userId, 'sell', '0.5', '100'));
      const noPrice = await db.orders.place(order(userId, 'buy', '0.1', null));
      assert.deepEqual(
        [funds, position, noPrice].map((r) => [r.order.status, r.order.reason, r.order.seq, r.portfolioVersion]),
        [
          ['rejected', 'insufficient_funds', 1, null],
          ['rejected', 'insufficient_position', 2, null],
          ['rejected', 'no_price', 3, null],
        ],
      );
      assert.deepEqual(await db.portfolio.get(userId), {
        balances: [{ asset: 'USD', available: '100', locked: '0' }],
        positions: [{ asset: 'SOL', size: '0', avgEntryPrice: '0' }],
        version: 0,
        orderSeq: 3,
      });
      const events = (await db.outbox.unpublished(10_000)).filter((r) => r.userId === userId);
      assert.deepEqual(
        events.map((e) => e.kind),
        ['order_rejected', 'order_rejected', 'order_rejected'],
      );
      const rejected = EVENT_KINDS.order_rejected.schema.parse(events[0]!.payload);
      assert.deepEqual(rejected, {
        userId,
        orderId: funds.order.orderId,
        side: 'buy',
        baseAsset: 'SOL',
        quoteAsset: 'USD',
        requestedSize: '1',
        reason: 'insufficient_funds',
        timestamp: funds.order.timestamp,
        seq: 1,
      });
    });

    it('rejects with price_stale when the price is past its validity as the order executes, any path', async () => {
      const userId = await newUser(db);
      const expired = { priceValidUntil: new Date(Date.now() - 1) };
      const stale = await db.orders.place({ ...order(userId, 'buy', '1', '100'), ...expired });
      // A symbol whose position row is missing goes the statement-by-statement way.
      const staleNew = await db.orders.place({ ...order(userId, 'buy', '1', '100'), symbol: 'ETH', ...expired });
      const fresh = await db.orders.place({
        ...order(userId, 'buy', '1', '100'),
        priceValidUntil: new Date(Date.now() + 60_000),
      });
      assert.deepEqual(
        [stale, staleNew, fresh].map((r) => [r.order.status, r.order.reason]),
        [
          ['rejected', 'price_stale'],
          ['rejected', 'price_stale'],
          ['filled', null],
        ],
      );
    });

    it('returns the events each order recorded, exactly as the outbox holds them, on every path', async () => {
      const [userId, ...others] = await Promise.all([newUser(db), newUser(db), newUser(db)]);
      // Orders of three users at once: one batched write, whose rows must go back each to its own order.
      const together = await Promise.all(
        [userId, ...others].map((id, i) => db.orders.place(order(id, 'buy', String(i + 1), '10'))),
      );
      for (const [i, other] of others.entries()) {
        const recorded = (await db.outbox.unpublished(100_000)).filter((r) => r.userId === other);
        assert.deepEqual(
          together[i + 1]!.events.map((e) => [e.id, e.userId, e.kind]),
          recorded.map((e) => [e.id, e.userId, e.kind]),
        );
        assert.equal((together[i + 1]!.events[0]!.payload as { executedSize: string }).executedSize, String(i + 2));
      }
      const placed = [
        together[0]!,
        // The optimistic path: a fill, then a rejection.
        await db.orders.place(order(userId, 'buy', '1', '10')),
        await db.orders.place(order(userId, 'buy', '1000000', '10')),
        // A symbol whose position row is missing: the statement-by-statement path.
        await db.orders.place({ ...order(userId, 'buy', '0.5', '100'), symbol: 'ETH' }),
        // Orders of one user at once: all but one go the locked path.
        ...(await Promise.all(Array.from({ length: 6 }, () => db.orders.place(order(userId, 'buy', '1', '10'))))),
      ];
      const returned = placed.flatMap((p) => p.events).sort((a, b) => a.id - b.id);
      const recorded = (await db.outbox.unpublished(100_000)).filter((r) => r.userId === userId);
      // The same ids, kinds, positions and payloads (the payload as JSON would carry it).
      const normalise = (events: typeof recorded) =>
        events.map((e) => ({ ...e, payload: JSON.parse(JSON.stringify(e.payload)) as unknown }));
      assert.deepEqual(normalise(returned), normalise(recorded));
      assert.equal(recorded.length, 2 * 9 + 1, 'nine fills with their portfolios, one rejection');
      for (const p of placed) {
        assert.deepEqual(
          p.events.map((e) => [e.kind, e.position]),
          p.order.status === 'filled'
            ? [
                ['order_filled', p.order.seq],
                ['portfolio', p.portfolioVersion],
              ]
            : [['order_rejected', p.order.seq]],
        );
        assert.equal((p.events[0]!.payload as { orderId: number }).orderId, p.order.orderId);
      }
    });

    it('reads only events old enough when asked for a minimum age', async () => {
      const userId = await newUser(db);
      await db.orders.place(order(userId, 'buy', '1', '10'));
      const mine = (rows: { userId: number }[]) => rows.filter((r) => r.userId === userId).length;
      assert.equal(mine(await db.outbox.unpublished(100_000, 60_000)), 0, 'nothing a minute old');
      assert.equal(mine(await db.outbox.markPublishedAndRead([], new Date(), 100_000, 60_000)), 0);
      assert.equal(mine(await db.outbox.unpublished(100_000)), 2);
      // Both, once 50 ms old.
      await waitFor(async () => mine(await db.outbox.unpublished(100_000, 50)) === 2, { what: 'both 50 ms old' });
      assert.equal(mine(await db.outbox.markPublishedAndRead([], new Date(), 100_000, 50)), 2);
    });

    it('pages orders newest first', async () => {
      const userId = await newUser(db);
      for (let i = 1; i <= 5; i++) await db.orders.place(order(userId, 'buy', String(i), '1'));
      const first = await db.orders.list(userId, { limit: 2 });
      assert.deepEqual(
        first.orders.map((o) => o.requestedSize),
        ['5', '4'],
      );
      assert.equal(first.seq, 5);
      const second = await db.orders.list(userId, { limit: 2, before: first.nextBefore });
      assert.deepEqual(
        second.orders.map((o) => o.requestedSize),
        ['3', '2'],
      );
      const last = await db.orders.list(userId, { limit: 2, before: second.nextBefore });
      assert.deepEqual(
        last.orders.map((o) => o.requestedSize),
        ['1'],
      );
      assert.equal(last.nextBefore, null);
    });

    it('lists orders and their seq from one moment, while orders of the same user keep arriving', async () => {
      // A client subscribes with since = seq: a seq past the newest order listed would skip an
      // order in the replay that the page does not have either.
      const userId = await newUser(db);
      let placing = true;
      const placed = (async () => {
        for (let i = 0; i < 150 && placing; i++) await db.orders.place(order(userId, 'buy', '0.001', '1'));
        placing = false;
      })();
      let lists = 0;
      try {
        while (placing) {
          const page = await db.orders.list(userId, { limit: 5 });
          lists++;
          assert.equal(page.seq, page.orders[0]?.seq ?? 0, `list ${lists}: seq against the newest order listed`);
        }
      } finally {
        placing = false;
        await placed;
      }
      assert.ok(lists > 1, `${lists} lists while orders arrived`);
    });

    it('fills exactly the concurrent orders that fit, never overdrawing (20 at once)', async () => {
      // Each buy costs 1000 + 0.1 fee; 10000 covers 9 of them.
      const userId = await newUser(db);
      const results = await Promise.all(
        Array.from({ length: 20 }, () => db.orders.place(order(userId, 'buy', '1', '1000'))),
      );
      const filled = results.filter((r) => r.order.status === 'filled');
      assert.equal(filled.length, 9);
      assert.ok(
        results.filter((r) => r.order.status === 'rejected').every((r) => r.order.reason === 'insufficient_funds'),
      );
      assert.deepEqual(
        results.map((r) => r.order.seq).sort((a, b) => a - b),
        Array.from({ length: 20 }, (_, i) => i + 1),
      );
      const portfolio = await db.portfolio.get(userId);
      assert.deepEqual(portfolio?.balances, [{ asset: 'USD', available: '999.1', locked: '0' }]);
      assert.deepEqual(portfolio?.positions, [{ asset: 'SOL', size: '9', avgEntryPrice: '1000' }]);
      assert.equal(portfolio?.version, 9);

      // Then sells: 9 held, 20 concurrent sells of 1 → 9 fill, the position ends at 0.
      const sells = await Promise.all(
        Array.from({ length: 20 }, () => db.orders.place(order(userId, 'sell', '1', '1000'))),
      );
      assert.equal(sells.filter((r) => r.order.status === 'filled').length, 9);
      const after = await db.portfolio.get(userId);
      assert.deepEqual(after?.positions, [{ asset: 'SOL', size: '0', avgEntryPrice: '0' }]);
      assert.deepEqual(after?.balances, [{ asset: 'USD', available: '9998.2', locked: '0' }]);

      // Outbox order events carry seq 1..40 in id order, with no gap.
      const seqs = (await db.outbox.unpublished(10_000))
        .filter((r) => r.userId === userId && r.kind !== 'portfolio')
        .map((r) => r.position);
      assert.deepEqual(
        seqs,
        Array.from({ length: 40 }, (_, i) => i + 1),
      );
      const [negative] = await db.drizzle
        .select({ n: count() })
        .from(schema.balances)
        .where(eq(schema.balances.userId, userId));
      assert.equal(negative?.n, 1);
    });

    it('gives every portfolio event the holdings as of its own order, with orders on two symbols racing', async () => {
      const userId = await newUser(db);
      // Opens the BTC position first (the statement-by-statement path), so that both race on the fast path.
      await db.orders.place({ ...order(userId, 'buy', '0.001', '10'), symbol: 'BTC' });
      await Promise.all(
        Array.from({ length: 16 }, (_, i) =>
          db.orders.place({ ...order(userId, 'buy', '1', '10'), symbol: i % 2 ? 'BTC' : 'SOL' }),
        ),
      );
      const events = (await db.outbox.unpublished(10_000)).filter((r) => r.userId === userId);
      const fills = new Map<number | null, { baseAsset: string }>();
      for (const e of events) if (e.kind === 'order_filled') fills.set(e.position, e.payload as { baseAsset: string });
      // Replaying the fills in seq order gives what each portfolio event must show.
      let usd = dec('10000');
      const size: Record<string, Decimal> = { BTC: dec('0'), SOL: dec('0') };
      const expected = new Map<number, string>();
      for (let seq = 1; seq <= 17; seq++) {
        const asset = fills.get(seq)!.baseAsset;
        const amount = seq === 1 ? '0.001' : '1';
        usd = usd.minus(dec(amount).times(10)).minus(dec(amount).times(10).times('0.0001'));
        size[asset] = size[asset]!.plus(amount);
        expected.set(seq, `${canonical(usd)} BTC ${canonical(size.BTC!)} SOL ${canonical(size.SOL!)}`);
      }
      const portfolios = events.filter((e) => e.kind === 'portfolio');
      assert.equal(portfolios.length, 17);
      for (const e of portfolios) {
        const p = e.payload as {
          orderSeq: number;
          balances: { available: string }[];
          positions: { asset: string; size: string }[];
        };
        const shown = `${p.balances[0]!.available} ${p.positions.map((x) => `${x.asset} ${x.size}`).join(' ')}`;
        assert.equal(shown, expected.get(p.orderSeq), `portfolio event of seq ${p.orderSeq}`);
      }
    });

    it('replays an idempotent order as placed, refuses its key for another order, frees it when old', async () => {
      const userId = await newUser(db);
      const key = (requestHash: string, notBefore = new Date(Date.now() - 60_000)) => ({
        idempotency: { key: 'k-1', requestHash, notBefore },
      });
      const first = await db.orders.place({ ...order(userId, 'buy', '1.50', '10'), ...key('a') });
      assert.equal(first.replayed, false);
      assert.equal(first.order.requestedSize, '1.5');
      const again = await db.orders.place({ ...order(userId, 'buy', '1.50', '10'), ...key('a') });
      assert.deepEqual(again, { order: first.order, portfolioVersion: null, replayed: true, events: [] });
      await assert.rejects(
        db.orders.place({ ...order(userId, 'sell', '1', '10'), ...key('b') }),
        IdempotencyKeyReusedError,
      );
      // A key older than its lifetime (notBefore after it was stored) is free again: a new order.
      const later = await db.orders.place({
        ...order(userId, 'buy', '1', '10'),
        ...key('b', new Date(Date.now() + 60_000)),
      });
      assert.equal(later.replayed, false);
      assert.equal(later.order.seq, 2);
      const rejected = await db.orders.place({
        ...order(userId, 'buy', '1', null),
        idempotency: { key: 'k-2', requestHash: 'c', notBefore: new Date(0) },
      });
      const replayedRejection = await db.orders.place({
        ...order(userId, 'buy', '1', null),
        idempotency: { key: 'k-2', requestHash: 'c', notBefore: new Date(0) },
      });
      assert.deepEqual(replayedRejection.order, rejected.order);
      assert.equal(replayedRejection.order.reason, 'no_price');
    });

    it('places an order only while its session is active, writing nothing otherwise', async () => {
      const userId = await newUser(db);
      const session = async (expiresAt = new Date(Date.now() + 3_600_000)) => {
        const { sessionId } = await db.sessions.create({ userId, tokenHash: hashToken(newSessionToken()), expiresAt });
        return sessionId;
      };
      const live = await session();
      const at = new Date();
      const sol = order(userId, 'buy', '1', '10');
      const btc = { ...order(userId, 'buy', '0.01', '50000'), symbol: 'BTC' };
      const first = await db.orders.place({
        ...sol,
        idempotency: { key: 'k-s', requestHash: 'h', notBefore: new Date(0) },
        session: { id: live, at },
      });
      assert.equal(first.order.status, 'filled');
      const rejection = await db.orders.place({ ...order(userId, 'buy', '1', null), session: { id: live, at } });
      assert.equal(rejection.order.reason, 'no_price');

      const expired = await session(new Date(at.getTime() + 1000));
      const revoked = await session();
      await db.sessions.revoke(revoked, at);
      const before = await db.orders.list(userId, { limit: 10 });
      const refused = [
        { ...sol, session: { id: revoked, at } },
        { ...order(userId, 'buy', '1', null), session: { id: revoked, at } },
        { ...sol, session: { id: expired, at: new Date(at.getTime() + 1000) } },
        // A replay would show the first order to whoever holds the revoked token.
        { ...sol, idempotency: { key: 'k-s', requestHash: 'h', notBefore: new Date(0) }, session: { id: revoked, at } },
        // A missing position, which would take the statement-by-statement path (the read refuses
        // it first; database.postgres.test.ts revokes after the read).
        { ...btc, session: { id: revoked, at } },
        // Another user's session.
        { ...sol, userId: await newUser(db), session: { id: live, at } },
        { ...sol, session: { id: '00000000-0000-4000-8000-000000000000', at } },
      ];
      for (const input of refused) await assert.rejects(db.orders.place(input), SessionNotActiveError);
      assert.deepEqual(await db.orders.list(userId, { limit: 10 }), before, 'nothing written');

      const opened = await db.orders.place({ ...btc, session: { id: live, at } });
      assert.equal(opened.order.status, 'filled');
      assert.equal(opened.order.seq, before.seq + 1);
    });

    it('executes the orders of many users arriving together each on its own holdings, key and session', async () => {
      // Calls in one tick share the order path's statements (group commit): every order must
      // still get its own rows, id, events and key, and one order's failure stays its own.
      const users = await Promise.all(Array.from({ length: 24 }, () => newUser(db)));
      const sessions = await Promise.all(
        users.map(async (userId) => {
          const token = hashToken(newSessionToken());
          return (await db.sessions.create({ userId, tokenHash: token, expiresAt: new Date(Date.now() + 3_600_000) }))
            .sessionId;
        }),
      );
      const at = new Date();
      await db.sessions.revoke(sessions[5]!, at);
      const size = (n: number) => canonical(dec(String(n + 1)).div(100));
      const input = (n: number) => ({
        ...order(users[n]!, 'buy', n === 7 ? '1000' : size(n), '100'),
        session: { id: sessions[n]!, at },
        ...(n % 2 === 0 ? { idempotency: { key: `k-${n}`, requestHash: `h-${n}`, notBefore: new Date(0) } } : {}),
      });
      // User 11 places two at once: they cannot share a write, and both fill. User 9 places
      // nothing in this wave, which shares one read and one write (a refusal would split them).
      const settled = await Promise.allSettled([
        ...users.map((_, n) => (n === 9 ? Promise.reject(new Error('not placed')) : db.orders.place(input(n)))),
        db.orders.place(input(11)),
      ]);

      const fee = (n: number) => dec(size(n)).times(100).times('0.0001');
      const placed = new Map<number, { orderId: number; seq: number }[]>();
      settled.forEach((result, i) => {
        const n = i < users.length ? i : 11;
        if (n === 5) {
          assert.equal(result.status, 'rejected');
          assert.ok(result.reason instanceof SessionNotActiveError, 'revoked session');
          return;
        }
        if (n === 9) return;
        assert.equal(
          result.status,
          'fulfilled',
          `order of user #${n}: ${String((result as PromiseRejectedResult).reason)}`,
        );
        const { order: o } = result.value;
        assert.equal(o.userId, users[n]);
        if (n === 7) assert.equal(o.reason, 'insufficient_funds');
        else {
          assert.equal(o.status, 'filled');
          assert.equal(o.executedSize, size(n));
          assert.equal(o.fee, canonical(fee(n)));
        }
        placed.set(n, [...(placed.get(n) ?? []), { orderId: o.orderId, seq: o.seq }]);
      });
      assert.deepEqual(
        placed
          .get(11)!
          .map((p) => p.seq)
          .sort(),
        [1, 2],
      );

      const events = await db.outbox.unpublished(100_000);
      for (const [n, orders] of placed) {
        const userId = users[n]!;
        const fills = n === 11 ? 2 : 1;
        const cost = dec(size(n)).times(100).plus(fee(n)).times(fills);
        const portfolio = await db.portfolio.get(userId);
        if (n === 7) {
          assert.deepEqual(portfolio?.balances, [{ asset: 'USD', available: '10000', locked: '0' }]);
          continue;
        }
        assert.deepEqual(portfolio?.balances, [
          { asset: 'USD', available: canonical(dec('10000').minus(cost)), locked: '0' },
        ]);
        assert.deepEqual(portfolio?.positions, [
          { asset: 'SOL', size: canonical(dec(size(n)).times(fills)), avgEntryPrice: '100' },
        ]);
        const own = events.filter((e) => e.userId === userId);
        for (const { orderId, seq } of orders) {
          const filled = own.find((e) => e.kind === 'order_filled' && e.position === seq);
          assert.equal((filled?.payload as { orderId?: number } | undefined)?.orderId, orderId, `event of #${n}`);
          assert.equal((filled?.payload as { executedSize?: string }).executedSize, size(n));
        }
        const last = own.filter((e) => e.kind === 'portfolio').at(-1)?.payload as { balances: unknown } | undefined;
        assert.deepEqual(last?.balances, portfolio?.balances, `portfolio event of #${n}`);
        if (n % 2 === 0) {
          const again = await db.orders.place(input(n));
          assert.equal(again.replayed, true);
          assert.equal(again.order.orderId, orders[0]!.orderId, `key of #${n}`);
        }
      }
      // An order whose values the server refuses fails alone; the batch it was in still fills.
      const others = [0, 1, 2].map((n) => ({ ...input(n), idempotency: undefined }));
      const [refused, ...filled] = await Promise.allSettled([
        db.orders.place({ ...input(9), session: { id: 'not-a-uuid', at } }),
        ...others.map((o) => db.orders.place(o)),
      ]);
      assert.equal(refused.status, 'rejected');
      assert.match(String(refused.reason), /uuid/);
      for (const [k, result] of filled.entries()) {
        assert.equal(result.status, 'fulfilled', `second order of #${k}`);
        if (result.status === 'fulfilled') assert.equal(result.value.order.seq, 2);
      }
      for (const n of [5, 9]) {
        assert.equal((await db.orders.list(users[n]!, { limit: 5 })).orders.length, 0, `nothing written for #${n}`);
      }
    });

    it('opens a missing position on the statement-by-statement path, then continues on the prepared one', async () => {
      const userId = await newUser(db);
      const btc = { ...order(userId, 'buy', '0.01', '50000'), symbol: 'BTC' };
      const opened = await db.orders.place(btc);
      assert.equal(opened.order.status, 'filled');
      assert.equal(opened.order.seq, 1);
      const next = await db.orders.place(btc);
      assert.equal(next.order.seq, 2);
      assert.equal(next.portfolioVersion, 2);
      assert.deepEqual((await db.portfolio.get(userId))?.positions, [
        { asset: 'BTC', size: '0.02', avgEntryPrice: '50000' },
        { asset: 'SOL', size: '0', avgEntryPrice: '0' },
      ]);
      await assert.rejects(db.orders.place(order(987_654_321, 'buy', '1', '10')), UnknownUserError);
    });

    it('hands out unpublished events in id order and forgets them once marked', async () => {
      const userId = await newUser(db);
      await db.orders.place(order(userId, 'buy', '1', '1'));
      const rows = await db.outbox.unpublished(10_000);
      const ids = rows.map((r) => r.id);
      assert.deepEqual(
        ids,
        [...ids].sort((a, b) => a - b),
      );
      // Marking the first and reading the rest in one statement leaves the marked one out.
      assert.deepEqual(
        (await db.outbox.markPublishedAndRead(ids.slice(0, 1), new Date(), 10_000)).map((r) => r.id),
        ids.slice(1),
      );
      assert.equal(await db.outbox.backlog(), ids.length - 1);
      await db.outbox.markPublished(ids, new Date());
      assert.equal(await db.outbox.backlog(), 0);
      assert.deepEqual(await db.outbox.unpublished(10), []);
      await db.orders.place(order(userId, 'buy', '1', '1'));
      assert.deepEqual(
        (await db.outbox.unpublished(10)).map((r) => r.kind),
        ['order_filled', 'portfolio'],
      );

      // Pruning deletes published events past the cutoff, oldest first, never unpublished ones.
      const future = new Date(Date.now() + 60_000);
      assert.equal(await db.outbox.prunePublished(future, 1), 1);
      assert.equal(await db.outbox.prunePublished(new Date(0), 1000), 0, 'nothing is older than 1970');
      assert.equal(await db.outbox.prunePublished(future, 100_000), ids.length - 1);
      assert.equal(await db.outbox.backlog(), 2, 'unpublished events stay');
      assert.deepEqual(
        (await db.outbox.unpublished(10)).map((r) => r.kind),
        ['order_filled', 'portfolio'],
      );
    });

    it("reads a user's order history after a seq, bounded, and prunes it only past both retentions", async () => {
      const userId = await newUser(db);
      const other = await newUser(db);
      for (let i = 0; i < 5; i++) await db.orders.place(order(userId, 'buy', '1', '1'));
      await db.orders.place(order(userId, 'buy', '1000000', '1')); // rejected: seq 6
      await db.orders.place(order(other, 'buy', '1', '1'));
      const all = await db.outbox.orderHistory(userId, 0, 100, 1 << 20);
      assert.deepEqual(
        all.events.map((e) => e.seq),
        [1, 2, 3, 4, 5, 6],
      );
      assert.deepEqual(
        all.events.map((e) => e.kind),
        ['order_filled', 'order_filled', 'order_filled', 'order_filled', 'order_filled', 'order_rejected'],
      );
      assert.equal(all.latestSeq, 6);
      assert.equal(all.oldestSeq, 1);
      assert.equal(all.truncated, false);
      assert.ok(EVENT_KINDS.order_rejected.schema.safeParse(all.events[5]!.payload).success);
      const page = await db.outbox.orderHistory(userId, 2, 2, 1 << 20);
      assert.deepEqual(
        page.events.map((e) => e.seq),
        [3, 4],
      );
      assert.equal(page.truncated, true);
      const tiny = await db.outbox.orderHistory(userId, 0, 100, 10);
      assert.deepEqual(
        tiny.events.map((e) => e.seq),
        [1],
        'the byte bound still lets one event through',
      );
      assert.equal(tiny.truncated, true);
      assert.deepEqual(await db.outbox.orderHistory(987_654, 0, 10, 1000), {
        events: [],
        latestSeq: 0,
        oldestSeq: null,
        truncated: false,
      });
      const latestOnly = await db.outbox.orderHistory(userId, Number.MAX_SAFE_INTEGER, 10, 1000);
      assert.deepEqual(
        [latestOnly.events.length, latestOnly.latestSeq],
        [0, 6],
        'a position past int4 reads the latest only',
      );

      await db.outbox.markPublished(
        (await db.outbox.unpublished(10_000)).map((r) => r.id),
        new Date(),
      );
      const future = new Date(Date.now() + 60_000);
      await db.outbox.prunePublished(future, 100_000, 2);
      const kept = await db.outbox.orderHistory(userId, 0, 100, 1 << 20);
      assert.deepEqual(
        kept.events.map((e) => e.seq),
        [5, 6],
        'the last 2 order events stay',
      );
      assert.equal(kept.oldestSeq, 5);
      assert.equal(kept.latestSeq, 6);
      assert.deepEqual(
        (await db.outbox.orderHistory(other, 0, 100, 1 << 20)).events.map((e) => e.seq),
        [1],
      );
    });

    it('refuses a negative balance at the database level too', async () => {
      const userId = await newUser(db);
      await assert.rejects(
        db.drizzle.update(schema.balances).set({ available: '-0.01' }).where(eq(schema.balances.userId, userId)),
      );
    });
  });
}
