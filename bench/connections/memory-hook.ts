/**
 * Diagnosis only, never loaded by the product: preloaded into a gateway process by the memory
 * probe (`--import memory-hook.ts`, after tsx's loader). On SIGUSR2 it collects all garbage and
 * appends one `MemoryReading` as a line of JSON to `memoryReadingsFile(process.pid)`.
 */
import { appendFileSync } from 'node:fs';
import { collectAndRead, memoryReadingsFile } from './memory-reading.ts';

process.on('SIGUSR2', () => {
  collectAndRead().then(
    (reading) => appendFileSync(memoryReadingsFile(process.pid), `${JSON.stringify(reading)}\n`),
    (err: unknown) => process.stderr.write(`memory-hook: ${String(err)}\n`),
  );
});
