import { createTestDatabase } from '@repo/test-support';

/** The server the benchmark's scratch databases live on (the machine's PostgreSQL by default). */
export const ADMIN_URL = process.env.BENCH_PG_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

export type ScratchDatabase = Awaited<ReturnType<typeof createTestDatabase>>;

/**
 * A fresh, empty PostgreSQL database on the server of BENCH_PG_ADMIN_URL, for one run of a
 * benchmark part (the tests' helper, on the benchmark's server).
 */
export function createScratchDatabase(prefix: string): Promise<ScratchDatabase> {
  return createTestDatabase(prefix, ADMIN_URL);
}
