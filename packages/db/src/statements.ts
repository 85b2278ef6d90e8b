import type { PGlite } from '@electric-sql/pglite';
import type pg from 'pg';

/**
 * One SQL statement of a hot path, with `$1…$n` parameters. On PostgreSQL it runs as a named
 * prepared statement: each pool connection parses and plans it once, then only binds and
 * executes it, which saves the server its parse and plan on every call and the API the
 * building of the query text. Its name must be unique in the process.
 */
export interface Statement {
  readonly name: string;
  readonly text: string;
}

export type Row = Record<string, unknown>;

/** Runs a statement and answers its rows (both drivers answer `{ rows }`). */
export type Query = (statement: Statement, values: unknown[]) => Promise<Row[]>;

/** Runs the hot paths' statements on either driver, outside or inside one transaction. */
export interface StatementRunner {
  query: Query;
  /** BEGIN, `run`, COMMIT; ROLLBACK when `run` throws (its error is rethrown). */
  transaction<T>(run: (query: Query) => Promise<T>): Promise<T>;
}

const names = new Set<string>();

export function statement(name: string, text: string): Statement {
  // Two texts under one name would run the first one's plan with the second one's values.
  if (names.has(name)) throw new Error(`statement name ${name} is used twice`);
  names.add(name);
  return { name, text };
}

export function postgresStatements(pool: pg.Pool): StatementRunner {
  return {
    async query(s, values) {
      return (await pool.query({ name: s.name, text: s.text, values })).rows as Row[];
    },
    async transaction(run) {
      const client = await pool.connect();
      const query: Query = async (s, values) =>
        (await client.query({ name: s.name, text: s.text, values })).rows as Row[];
      let broken: Error | undefined;
      try {
        await client.query('begin');
        const result = await run(query);
        await client.query('commit');
        return result;
      } catch (err) {
        try {
          await client.query('rollback');
        } catch (rollbackErr) {
          // The connection is in an unknown state: the pool must not hand it out again.
          broken = rollbackErr as Error;
        }
        throw err;
      } finally {
        client.release(broken);
      }
    },
  };
}

export function pgliteStatements(client: PGlite): StatementRunner {
  return {
    async query(s, values) {
      return (await client.query<Row>(s.text, values)).rows;
    },
    transaction(run) {
      return client.transaction((tx) => run(async (s, values) => (await tx.query<Row>(s.text, values)).rows));
    },
  };
}
