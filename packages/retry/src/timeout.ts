/** An operation did not finish within its deadline. `code` is `'timeout'` wherever it is thrown. */
export class TimeoutError extends Error {
  readonly code = 'timeout';
  constructor(message: string) {
    super(message);
    this.name = 'TimeoutError';
  }
}

/**
 * Resolves like `promise`, or rejects with `TimeoutError` ("<what> took longer than <ms> ms")
 * after `ms`. The timer never keeps a Node process alive. The operation itself goes on: callers
 * that can cancel it (an AbortSignal, a statement timeout) should do so as well.
 */
export function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new TimeoutError(`${what} took longer than ${ms} ms`)), ms);
    // Node's timers can be unref'd; a browser's are plain numbers.
    (timer as { unref?: () => void }).unref?.();
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
