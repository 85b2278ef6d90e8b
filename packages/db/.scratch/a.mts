import { PGlite } from '@electric-sql/pglite';
import { readFile } from 'node:fs/promises';
const mode = process.argv[2];
let t = Date.now();
const c = mode === 'tpl' ? new PGlite({ loadDataDir: new Blob([await readFile('/tmp/tradewire-pglite-templates/tradewire-pglite-75a6e113fea2ecc8.tar.gz')]) }) : new PGlite();
await c.waitReady; console.log(mode, Date.now() - t);
await c.close();
