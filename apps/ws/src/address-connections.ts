/**
 * Open sockets per client address (by its `addressKey`, so IPv6 per /64), for
 * `maxConnectionsPerAddress`: one host must not hold every connection slot of the process.
 * An address has an entry only while it has a socket open, so the table is never larger
 * than the number of open connections.
 */
export class AddressConnections {
  readonly #limit: number;
  readonly #open = new Map<string, number>();

  constructor(limit: number) {
    this.#limit = limit;
  }

  /** Whether `key` may open one more socket. */
  hasRoom(key: string): boolean {
    return (this.#open.get(key) ?? 0) < this.#limit;
  }

  /** A socket of `key` opened. */
  add(key: string): void {
    this.#open.set(key, (this.#open.get(key) ?? 0) + 1);
  }

  /** A socket of `key` closed. */
  remove(key: string): void {
    const count = this.#open.get(key);
    if (count === undefined) return;
    if (count <= 1) this.#open.delete(key);
    else this.#open.set(key, count - 1);
  }

  /** Addresses with a socket open now. */
  get addresses(): number {
    return this.#open.size;
  }
}
