/**
 * Session ids revoked in the last `ttlMs`, so an `auth` whose verification was already in
 * flight when the revocation arrived cannot resurrect the session. Bounded by `maxEntries`.
 */
export class RecentRevocations {
  readonly #at = new Map<string, number>();
  readonly #ttlMs: number;
  readonly #maxEntries: number;

  constructor(ttlMs = 60_000, maxEntries = 10_000) {
    this.#ttlMs = ttlMs;
    this.#maxEntries = maxEntries;
  }

  add(sessionId: string, nowMs: number): void {
    this.#at.delete(sessionId);
    this.#at.set(sessionId, nowMs);
    // Oldest first (Map keeps insertion order): trim expired and overflow from the front.
    for (const [id, at] of this.#at) {
      if (this.#at.size <= this.#maxEntries && nowMs - at < this.#ttlMs) break;
      this.#at.delete(id);
    }
  }

  has(sessionId: string, nowMs: number): boolean {
    const at = this.#at.get(sessionId);
    return at !== undefined && nowMs - at < this.#ttlMs;
  }
}
