import { openDatabase } from '../src/index.ts';
import { databaseSuite } from './database-suite.ts';

databaseSuite('PGlite (in memory)', () => openDatabase({ dataDir: 'memory://' }));
