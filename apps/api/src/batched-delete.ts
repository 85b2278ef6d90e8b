/**
 * Runs `deleteBatch(limit)` until a batch comes back short: a backlog of any size is cleared
 * in one run, yet no single statement holds its rows (and locks) for long. Yields to the
 * event loop between batches, so requests are served meanwhile. Returns the total deleted.
 */
export async function deleteUntilCaughtUp(
  deleteBatch: (limit: number) => Promise<number>,
  batchSize: number,
  stopped: () => boolean = () => false,
): Promise<number> {
  let total = 0;
  for (;;) {
    const deleted = await deleteBatch(batchSize);
    total += deleted;
    if (deleted < batchSize || stopped()) return total;
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
}
