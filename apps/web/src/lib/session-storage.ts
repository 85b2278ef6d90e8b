/**
 * The session is kept for the tab (sessionStorage): a reload stays logged in, a new tab or a
 * closed browser starts logged out, and logging out removes it.
 */
import type { Session } from './api.ts';

const KEY = 'tradewire.session';

export function loadSession(storage: Storage = sessionStorage): Session | null {
  try {
    const raw = storage.getItem(KEY);
    if (!raw) return null;
    const v = JSON.parse(raw) as Partial<Session>;
    if (typeof v.token === 'string' && typeof v.userId === 'number' && typeof v.username === 'string') {
      return { token: v.token, userId: v.userId, username: v.username };
    }
  } catch {
    // A damaged entry (another script, an old format) is as good as none.
  }
  storage.removeItem(KEY);
  return null;
}

export function saveSession(session: Session, storage: Storage = sessionStorage): void {
  storage.setItem(KEY, JSON.stringify(session));
}

export function clearSession(storage: Storage = sessionStorage): void {
  storage.removeItem(KEY);
}
