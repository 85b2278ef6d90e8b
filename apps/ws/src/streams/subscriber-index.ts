import type { Channel, PRIVATE_CHANNELS } from '@repo/protocol';

/** A channel that carries one user's events only. */
export type PrivateChannel = (typeof PRIVATE_CHANNELS)[number];

const EMPTY: ReadonlySet<never> = new Set();

/**
 * Who listens to what, indexed so that routing an event touches only its recipients:
 * `prices` is one set; `orders` and `portfolio` are `Map<userId, Set<socket>>`; sessions are
 * `Map<sessionId, Set<socket>>` so a revocation finds its sockets without a scan.
 * Empty sets are removed, so the maps hold only users with a live subscription.
 */
export class SubscriberIndex<S> {
  readonly #prices = new Set<S>();
  readonly #byUser: Record<PrivateChannel, Map<number, Set<S>>> = {
    orders: new Map(),
    portfolio: new Map(),
  };
  readonly #bySession = new Map<string, Set<S>>();

  /** Adds `socket` to `channel` (for `userId` on a private one); false when it already was. */
  add(channel: Channel, socket: S, userId: number | null): boolean {
    if (channel === 'prices') return addTo(this.#prices, socket);
    if (userId === null) throw new Error(`subscribing to ${channel} needs a user`);
    return addKeyed(this.#byUser[channel], userId, socket);
  }

  /** Removes `socket` from `channel`; false when it was not there. */
  remove(channel: Channel, socket: S, userId: number | null): boolean {
    if (channel === 'prices') return this.#prices.delete(socket);
    if (userId === null) return false;
    return removeKeyed(this.#byUser[channel], userId, socket);
  }

  prices(): ReadonlySet<S> {
    return this.#prices;
  }

  /** The sockets of `userId` subscribed to `channel`. */
  ofUser(channel: PrivateChannel, userId: number): ReadonlySet<S> {
    return this.#byUser[channel].get(userId) ?? EMPTY;
  }

  /** The users with at least one socket subscribed to `channel`. */
  users(channel: PrivateChannel): IterableIterator<number> {
    return this.#byUser[channel].keys();
  }

  addSession(sessionId: string, socket: S): void {
    addKeyed(this.#bySession, sessionId, socket);
  }

  removeSession(sessionId: string, socket: S): void {
    removeKeyed(this.#bySession, sessionId, socket);
  }

  /** The sockets authenticated with `sessionId`, as a copy (callers change the index while iterating). */
  ofSession(sessionId: string): S[] {
    const set = this.#bySession.get(sessionId);
    return set ? [...set] : [];
  }
}

function addTo<S>(set: Set<S>, socket: S): boolean {
  if (set.has(socket)) return false;
  set.add(socket);
  return true;
}

function addKeyed<K, S>(map: Map<K, Set<S>>, key: K, socket: S): boolean {
  let set = map.get(key);
  if (!set) {
    set = new Set();
    map.set(key, set);
  }
  return addTo(set, socket);
}

function removeKeyed<K, S>(map: Map<K, Set<S>>, key: K, socket: S): boolean {
  const set = map.get(key);
  if (!set || !set.delete(socket)) return false;
  if (set.size === 0) map.delete(key);
  return true;
}
