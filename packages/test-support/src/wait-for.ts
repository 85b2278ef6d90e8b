/**
 * Polls `predicate` until it returns a truthy value or `timeoutMs` passes. For conditions
 * that have no event to await (a process gone, a counter reaching a value). Never a fixed sleep.
 */
export async function waitFor<T>(
  predicate: () => T | Promise<T>,
  { timeoutMs = 5000, intervalMs = 10, what = 'condition' } = {},
): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await predicate();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** Resolves with the first value `subscribe` hands its callback, or rejects after `timeoutMs`. */
export function nextValue<T>(
  subscribe: (callback: (value: T) => void) => void | (() => void),
  { timeoutMs = 5000, what = 'event' } = {},
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    // Not const: a subscription that calls back synchronously reads it before `subscribe` returns.
    // eslint-disable-next-line prefer-const
    let unsubscribe: void | (() => void);
    const timer = setTimeout(() => {
      if (typeof unsubscribe === 'function') unsubscribe();
      reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`));
    }, timeoutMs);
    unsubscribe = subscribe((value) => {
      clearTimeout(timer);
      if (typeof unsubscribe === 'function') unsubscribe();
      resolve(value);
    });
  });
}
