/**
 * Tells the runner when a measured window opens and closes, so it can profile the server
 * over exactly that window (`npm run bench -- --profile`).
 */
export function signalWindow(phase: 'start' | 'end'): void {
  process.send?.({ type: 'window', phase });
}

let settled: (() => void) | null = null;

/** main.ts hands the runner's `settled` answer here. */
export function onSettled(): void {
  settled?.();
  settled = null;
}

/**
 * After the clients connected and before anything is measured: the runner collects the
 * server's garbage, and this process collects its own. Opening thousands of connections in a
 * few seconds leaves megabytes of young handshake garbage on both sides; without this, the
 * first minor GCs of the measured window copy it, pausing both loops for tens of ms, and the
 * scenario with more connections pays more of that one-off cost. A real gateway's
 * connections arrive over minutes, not in one burst right before its busiest second.
 */
export async function settle(): Promise<void> {
  if (process.send) {
    const answered = new Promise<void>((resolve) => (settled = resolve));
    process.send({ type: 'settle' });
    await answered;
  }
  (globalThis as { gc?: () => void }).gc?.();
}
