import { openDatabase } from '../src/index.ts';
import { createTestDatabase } from '@repo/test-support';
import { databaseSuite } from './database-suite.ts';

let pg: Awaited<ReturnType<typeof createTestDatabase>> | undefined;
databaseSuite(
  'PostgreSQL',
  async () => {
    pg = await createTestDatabase();
    return openDatabase({ url: pg.url });
  },
  async () => {
    await pg?.drop();
  },
);
