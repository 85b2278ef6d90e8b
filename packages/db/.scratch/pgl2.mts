import { PGlite } from '@electric-sql/pglite';
let t = Date.now();
const c = new PGlite(); await c.waitReady; console.log('init', Date.now() - t);
t = Date.now(); const dump = await c.dumpDataDir('none'); console.log('dump', Date.now() - t, dump.size);
await c.close();
t = Date.now();
const d = new PGlite({ loadDataDir: dump }); await d.waitReady; console.log('load', Date.now() - t);
await d.close();
