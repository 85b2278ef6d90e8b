/**
 * Tells the runner when a measured window opens and closes, so it can profile the server
 * over exactly that window (`npm run bench -- --profile`).
 */
export function signalWindow(phase: 'start' | 'end'): void {
  process.send?.({ type: 'window', phase });
}
