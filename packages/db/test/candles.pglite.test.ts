import { openDatabase } from '../src/index.ts';
import { candlesSuite } from './candles-suite.ts';

candlesSuite('PGlite (in memory)', () => openDatabase({ dataDir: 'memory://' }));
