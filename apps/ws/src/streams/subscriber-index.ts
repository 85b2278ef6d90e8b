const EMPTY: ReadonlySet<never> = new Set();

/**
 * Members by key (a user's streams on a private channel, the sockets of a session), so that
 * routing an event touches only its recipients' entry. Empty sets are removed: the map holds
 * only keys with a member.
 */
export class SubscriberIndex<K, S> {
  readonly #byKey = new Map<K, Set<S>>();

  /** Adds `member` under `key`; false when it already was. */
  add(key: K, member: S): boolean {
    let set = this.#byKey.get(key);
    if (!set) {
      set = new Set();
      this.#byKey.set(key, set);
    }
    if (set.has(member)) return false;
    set.add(member);
    return true;
  }

  /** Removes `member` from `key`; false when it was not there. */
  remove(key: K, member: S): boolean {
    const set = this.#byKey.get(key);
    if (!set || !set.delete(member)) return false;
    if (set.size === 0) this.#byKey.delete(key);
    return true;
  }

  /** The members under `key` (live: copy it before changing the index while walking). */
  get(key: K): ReadonlySet<S> {
    return this.#byKey.get(key) ?? EMPTY;
  }

  /** The keys with at least one member. */
  keys(): IterableIterator<K> {
    return this.#byKey.keys();
  }
}
