import { openDatabase, hashPassword } from '../src/index.ts';
import { createTempPostgresDatabase } from '../src/testing.ts';
const tmp = await createTempPostgresDatabase();
let t0 = Date.now();
const [db, db2] = await Promise.all([openDatabase({ url: tmp.url }), openDatabase({ url: tmp.url })]);
console.log('open', Date.now() - t0);
const { userId } = await db.users.create({ username: 'alice', passwordHash: await hashPassword('x', { cost: 16 }), balances: [{ asset: 'USD', available: '10000' }], positionAssets: ['SOL'] });
const r = await db.orders.place({ userId, symbol: 'SOL', quoteAsset: 'USD', side: 'buy', size: '10', price: '231.45', feeRate: '0.0001' });
console.log(r);
console.log(await db.portfolio.get(userId));
console.log((await db.outbox.unpublished(10)).length, await db.outbox.backlog());
try { await db.users.create({ username: 'alice', passwordHash: 'x', balances: [], positionAssets: [] }); } catch (e) { console.log(e) }
await db.close(); await db2.close();
await tmp.drop();
