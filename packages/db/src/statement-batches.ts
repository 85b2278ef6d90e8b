import type { Query, Row, Statement } from './statements.ts';

/**
 * Group commit for the order path. Orders of different users that reach the same statement
 * while an earlier call of it is still running are sent together as one statement: one round
 * trip, one executor start and, for a write, one commit and WAL flush for all of them, where
 * each used to pay its own. Nothing waits on purpose: a call that finds the statement idle is
 * sent at once, alone, so a quiet system's latency is what it was; under load the batches
 * grow by themselves, as the waits they fill do.
 *
 * A batched statement takes every parameter as an array with one element per call, and
 * answers rows that carry the call's 1-based position in a column `i` (`unnest(…) with
 * ordinality`); `runMany` transposes the calls' parameter lists into those arrays.
 */
export interface BatchOptions {
  /** The most calls in one statement. */
  maxBatch: number;
  /** The most statements of this kind running at once. */
  maxInFlight: number;
  /**
   * Calls with the same key never share a statement: the later one waits for the next. The
   * order writes use the user, whose second order in one statement could only fail its guard.
   */
  keyOf?: (values: readonly unknown[]) => unknown;
}

/** One call of a batched statement: its own parameters in, its own rows out. */
export type BatchedQuery = (values: unknown[]) => Promise<Row[]>;

interface Call {
  values: unknown[];
  resolve: (rows: Row[]) => void;
  reject: (err: unknown) => void;
}

/** Runs `calls` of a batched statement as one, answering all their rows (each with its `i`). */
export function runMany(query: Query, statement: Statement, calls: readonly (readonly unknown[])[]): Promise<Row[]> {
  const first = calls[0];
  if (!first) return Promise.resolve([]);
  return query(
    statement,
    first.map((_, column) => calls.map((call) => call[column])),
  );
}

export function batchedStatement(query: Query, statement: Statement, options: BatchOptions): BatchedQuery {
  for (const name of ['maxBatch', 'maxInFlight'] as const) {
    if (!Number.isInteger(options[name]) || options[name] < 1) {
      throw new RangeError(`${statement.name}: ${name} must be a positive integer, got ${options[name]}`);
    }
  }
  let waiting: Call[] = [];
  let inFlight = 0;
  let scheduled = false;

  // Deferred to a microtask so that the calls one I/O callback resumes (several HTTP requests
  // read at once, several Redis replies in one packet) are seen together; it delays none of them.
  function schedule(): void {
    if (scheduled) return;
    scheduled = true;
    queueMicrotask(() => {
      scheduled = false;
      while (inFlight < options.maxInFlight && waiting.length > 0) {
        const batch = take();
        inFlight++;
        void run(batch).finally(() => {
          inFlight--;
          if (waiting.length > 0) schedule();
        });
      }
    });
  }

  function take(): Call[] {
    const { keyOf, maxBatch } = options;
    if (!keyOf) return waiting.splice(0, maxBatch);
    const batch: Call[] = [];
    const held: Call[] = [];
    const keys = new Set<unknown>();
    for (const call of waiting) {
      const key = keyOf(call.values);
      if (batch.length === maxBatch || keys.has(key)) held.push(call);
      else {
        keys.add(key);
        batch.push(call);
      }
    }
    waiting = held;
    return batch;
  }

  async function run(batch: Call[]): Promise<void> {
    let rows: Row[];
    try {
      rows = await runMany(
        query,
        statement,
        batch.map((call) => call.values),
      );
    } catch (err) {
      if (batch.length === 1 || !refusedByServer(err)) {
        // Without the server's refusal the statement may have committed (a connection lost
        // after COMMIT but before the answer): running the writes again could place an order
        // twice, so each caller gets the error, as a statement of its own would have given it.
        for (const call of batch) call.reject(err);
        return;
      }
      // One call can fail the statement for all (a value the server refuses, a key another
      // process stored first): each runs again alone for its own answer.
      // The server refused the statement, and a statement is atomic: it wrote nothing.
      await Promise.all(
        batch.map((call) =>
          runMany(query, statement, [call.values]).then(
            (own) => call.resolve(own),
            (ownErr: unknown) => call.reject(ownErr),
          ),
        ),
      );
      return;
    }
    const answers: Row[][] = batch.map(() => []);
    for (const row of rows) {
      const answer = answers[Number(row.i) - 1];
      if (!answer) {
        const err = new Error(`${statement.name} answered a row for call ${String(row.i)} of ${batch.length}`);
        for (const call of batch) call.reject(err);
        return;
      }
      answer.push(row);
    }
    batch.forEach((call, n) => call.resolve(answers[n]!));
  }

  return (values) =>
    new Promise<Row[]>((resolve, reject) => {
      waiting.push({ values, resolve, reject });
      schedule();
    });
}

/**
 * The server answered the statement with an error: it was rolled back. Both drivers' errors
 * carry PostgreSQL's SQLSTATE and severity; a lost connection's do not. Left out, because the
 * session ended and whether the statement had committed is not said: a FATAL or PANIC, and
 * the SQLSTATEs that come with one (class 08, connection exception; 57P01–57P05, the server
 * shutting down or the session ended). The severity is compared by SQLSTATE as well, since it
 * is in the server's language (`lc_messages`).
 */
function refusedByServer(err: unknown): boolean {
  const { severity, code } = (err ?? {}) as { severity?: unknown; code?: unknown };
  if (typeof severity !== 'string' || typeof code !== 'string' || !/^[0-9A-Z]{5}$/.test(code)) return false;
  if (severity === 'FATAL' || severity === 'PANIC') return false;
  return !code.startsWith('08') && !/^57P0[1-5]$/.test(code);
}
