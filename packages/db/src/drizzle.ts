import type { PgDatabase, PgQueryResultHKT } from 'drizzle-orm/pg-core';

/** A drizzle handle over either driver (node-postgres or PGlite): both are a `PgDatabase`. */
export type DrizzleDb = PgDatabase<PgQueryResultHKT>;
/** A transaction handle of `DrizzleDb`. */
export type DrizzleTx = Parameters<Parameters<DrizzleDb['transaction']>[0]>[0];
/** Either: code that may run inside or outside a transaction. */
export type DrizzleExecutor = DrizzleDb | DrizzleTx;
