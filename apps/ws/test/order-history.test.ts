import { openDatabase, type Database } from '@repo/db';
import { createTestDatabase } from '@repo/test-support';
import { MemoryOrderHistory } from './memory-order-history.ts';
import { orderHistoryContract, type HistoryUnderTest } from './order-history.contract.ts';

/** The in-memory history (tests), and the outbox the launcher hands the gateway, on both engines. */

orderHistoryContract('in memory', () => {
  const history = new MemoryOrderHistory();
  let users = 0;
  const seqOf = new Map<number, number>();
  const under: HistoryUnderTest = {
    history,
    newUser: () => Promise.resolve((users += 1)),
    record(userId, kind) {
      const seq = (seqOf.get(userId) ?? 0) + 1;
      seqOf.set(userId, seq);
      const common = { userId, orderId: seq, side: 'buy' as const, baseAsset: 'SOL', quoteAsset: 'USD' };
      const timestamp = new Date().toISOString();
      history.record(
        kind,
        kind === 'order_filled'
          ? { ...common, executedPrice: '100', executedSize: '1', fee: '0.01', timestamp, seq }
          : { ...common, requestedSize: '1', reason: 'insufficient balance', timestamp, seq },
      );
      return Promise.resolve();
    },
    keepLast(keep) {
      history.keepLast(keep);
      return Promise.resolve();
    },
    close: () => Promise.resolve(),
  };
  return Promise.resolve(under);
});

/** The outbox as the launcher passes it: orders placed through the database, pruned by its retention. */
function outboxHistory(db: Database, cleanup: () => Promise<void>): HistoryUnderTest {
  let users = 0;
  return {
    history: { read: (userId, afterSeq, limit, maxBytes) => db.outbox.orderHistory(userId, afterSeq, limit, maxBytes) },
    async newUser() {
      const { userId } = await db.users.create({
        username: `history_${process.pid}_${(users += 1)}`,
        passwordHash: 'scrypt$2$8$1$AA$AA',
        balances: [{ asset: 'USD', available: '1000' }],
        positionAssets: ['SOL'],
      });
      return userId;
    },
    async record(userId, kind) {
      // A size the balance covers fills; one it cannot cover is rejected.
      const size = kind === 'order_filled' ? '1' : '1000000';
      const placed = await db.orders.place({
        userId,
        symbol: 'SOL',
        quoteAsset: 'USD',
        side: 'buy',
        size,
        price: '1',
        feeRate: '0.0001',
        session: null,
      });
      if ((placed.order.status === 'filled') !== (kind === 'order_filled')) throw new Error(`not a ${kind}`);
    },
    async keepLast(keep) {
      await db.outbox.markPublished(
        (await db.outbox.unpublished(100_000)).map((row) => row.id),
        new Date(),
      );
      await db.outbox.prunePublished(new Date(Date.now() + 60_000), 100_000, keep);
    },
    async close() {
      await db.close();
      await cleanup();
    },
  };
}

orderHistoryContract('outbox on PGlite', async () =>
  outboxHistory(await openDatabase({ dataDir: 'memory://' }), () => Promise.resolve()),
);

orderHistoryContract('outbox on PostgreSQL', async () => {
  const pg = await createTestDatabase();
  return outboxHistory(await openDatabase({ url: pg.url }), () => pg.drop());
});
