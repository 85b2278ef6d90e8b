/**
 * The last order whose fate is unknown (no answer came back, or only a server error) and its
 * Idempotency-Key, kept for the tab (sessionStorage) so that placing the same order again,
 * after a market switch remounted the ticket or a reload, sends the same key: the server then
 * executes it at most once. Tied to the session that placed it: another user never reuses it.
 */
const KEY = 'tradewire.undecided-order';

interface Undecided {
  token: string;
  key: string;
  order: string;
}

function read(storage: Storage): Undecided | null {
  try {
    const v = JSON.parse(storage.getItem(KEY) ?? 'null') as Partial<Undecided> | null;
    if (v && typeof v.token === 'string' && typeof v.key === 'string' && typeof v.order === 'string') {
      return { token: v.token, key: v.key, order: v.order };
    }
  } catch {
    // A damaged entry is as good as none.
  }
  return null;
}

/** The key to send for `order` (a canonical description of it): the kept one when it is the same order. */
export function keyForOrder(token: string, order: string, fresh: () => string, storage = sessionStorage): string {
  const kept = read(storage);
  return kept && kept.token === token && kept.order === order ? kept.key : fresh();
}

/** `order` went out under `key` and its fate is unknown. */
export function rememberUndecided(token: string, key: string, order: string, storage = sessionStorage): void {
  storage.setItem(KEY, JSON.stringify({ token, key, order } satisfies Undecided));
}

/** A definite answer came for the session's order: its key is free. */
export function forgetUndecided(storage = sessionStorage): void {
  storage.removeItem(KEY);
}
