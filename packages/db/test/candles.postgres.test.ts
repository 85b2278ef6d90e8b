import { createTestDatabase } from '@repo/test-support';
import { openDatabase } from '../src/index.ts';
import { candlesSuite } from './candles-suite.ts';

let pg: Awaited<ReturnType<typeof createTestDatabase>> | undefined;
candlesSuite(
  'PostgreSQL',
  async () => {
    pg = await createTestDatabase('tw_candles');
    return openDatabase({ url: pg.url });
  },
  async () => {
    await pg?.drop();
  },
);
