import { AddressConnections } from './address-connections.ts';
import { AddressRateLimiter } from './address-rate-limiter.ts';

/** Why a connection slot was refused; each maps to one HTTP status at upgrade. */
export type RefusalReason = 'address_rate' | 'address_connections' | 'max_connections';

/** The answer to a reservation: a slot, or the reason there is none. */
export type Reservation =
  | { readonly ok: true }
  | { readonly ok: false; readonly reason: 'address_rate'; readonly retryAfterMs: number }
  | { readonly ok: false; readonly reason: 'address_connections' | 'max_connections' };

/**
 * Where the gateway reserves a connection slot before it completes an upgrade, and returns it
 * when the socket closes. In one process that is a `ConnectionLedger` answered at once; with
 * `WS_WORKERS` it is the node's primary, answered over IPC, so that the limits hold for the
 * whole node rather than once per worker.
 */
export interface AdmissionLedger {
  /** Counts one upgrade attempt of `key` (null: exempt from the per-address limits) and reserves a slot. */
  reserve(key: string | null): Reservation | Promise<Reservation>;
  /** A slot reserved under `key` is free again (its socket closed, or its handshake failed). */
  release(key: string | null): void;
}

const GRANTED: Reservation = { ok: true };

/**
 * The connection limits of one gateway node: upgrade attempts per address and window, open
 * sockets per address, and open sockets in all. A slot is reserved before the handshake and
 * released when the socket closes, so a socket still in its handshake already counts and two
 * upgrades in flight cannot both take the last slot.
 */
export class ConnectionLedger implements AdmissionLedger {
  readonly #attempts: AddressRateLimiter;
  readonly #open: AddressConnections;
  readonly #maxConnections: number;
  readonly #now: () => number;
  #total = 0;

  constructor(options: {
    upgradesPerAddress: number;
    upgradeWindowMs: number;
    maxConnectionsPerAddress: number;
    maxConnections: number;
    now?: () => number;
  }) {
    this.#attempts = new AddressRateLimiter({ limit: options.upgradesPerAddress, windowMs: options.upgradeWindowMs });
    this.#open = new AddressConnections(options.maxConnectionsPerAddress);
    this.#maxConnections = options.maxConnections;
    this.#now = options.now ?? Date.now;
  }

  reserve(key: string | null): Reservation {
    if (key !== null) {
      const now = this.#now();
      if (!this.#attempts.take(key, now)) {
        return { ok: false, reason: 'address_rate', retryAfterMs: this.#attempts.retryAfterMs(now) };
      }
      if (!this.#open.hasRoom(key)) return { ok: false, reason: 'address_connections' };
    }
    if (this.#total >= this.#maxConnections) return { ok: false, reason: 'max_connections' };
    if (key !== null) this.#open.add(key);
    this.#total += 1;
    return GRANTED;
  }

  release(key: string | null): void {
    if (key !== null) this.#open.remove(key);
    if (this.#total > 0) this.#total -= 1;
  }

  /** Slots reserved now (sockets open or in their handshake). */
  get total(): number {
    return this.#total;
  }
}
