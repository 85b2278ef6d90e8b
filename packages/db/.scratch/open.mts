import { openDatabase } from '../src/index.ts';
let t = Date.now();
const db = await openDatabase({ dataDir: 'memory://' });
console.log('open', Date.now() - t);
await db.close();
