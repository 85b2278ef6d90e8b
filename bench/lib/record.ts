import type { RunRecord } from './results.ts';
import type { ServerName } from './servers.ts';

/**
 * Runs one repetition of one scenario, logs its figures (or why it failed) with how long it
 * took, and keeps the outcome: a failed run is recorded, not thrown, so the others still run.
 */
export async function recordRun<T>(
  log: (line: string) => void,
  rep: number,
  server: ServerName,
  what: string,
  run: () => Promise<T>,
  describe: (r: T) => string,
): Promise<RunRecord<T>> {
  const started = Date.now();
  try {
    const result = await run();
    log(`rep ${rep} ${what} ${server}: ${describe(result)} (${((Date.now() - started) / 1000).toFixed(0)} s)`);
    return { rep, server, ok: true, result };
  } catch (err) {
    const error = err instanceof Error ? err.message : String(err);
    log(`rep ${rep} ${what} ${server}: FAILED: ${error.split('\n')[0]}`);
    return { rep, server, ok: false, error: error.slice(0, 2000) };
  }
}
