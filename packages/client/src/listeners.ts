/**
 * A tiny typed listener registry (the client must run in browsers, so no node:events).
 * A listener that throws is reported to `onListenerError` and the others still run: one
 * broken UI component must not stop the rest of the app from hearing about the connection.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyListener = (...args: any[]) => void;

export class Listeners<Events extends { [name: string]: unknown[] }> {
  // Stored untyped: the map cannot tie each name to its own listener type; `on` and `emit` do.
  private readonly byName = new Map<keyof Events, Set<AnyListener>>();

  constructor(private readonly onListenerError: (name: keyof Events, error: unknown) => void) {}

  /** Adds `listener`; the returned function removes it (calling it twice is harmless). */
  on<K extends keyof Events>(name: K, listener: (...args: Events[K]) => void): () => void {
    let set = this.byName.get(name);
    if (!set) {
      set = new Set();
      this.byName.set(name, set);
    }
    set.add(listener as AnyListener);
    return () => {
      set.delete(listener as AnyListener);
    };
  }

  count(name: keyof Events): number {
    return this.byName.get(name)?.size ?? 0;
  }

  emit<K extends keyof Events>(name: K, ...args: Events[K]): void {
    const set = this.byName.get(name);
    if (!set || set.size === 0) return;
    // A copy, so a listener that removes itself (or adds another) does not disturb this round.
    for (const listener of [...set]) {
      try {
        listener(...args);
      } catch (error) {
        this.onListenerError(name, error);
      }
    }
  }
}
