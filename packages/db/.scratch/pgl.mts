import { PGlite } from '@electric-sql/pglite';
let t = Date.now();
const c = new PGlite(); await c.waitReady; console.log('init', Date.now() - t);
t = Date.now(); await c.query('select 1'); console.log('q', Date.now() - t);
await c.close();
t = Date.now();
const d = new PGlite(); await d.waitReady; console.log('init2', Date.now() - t);
await d.close();
