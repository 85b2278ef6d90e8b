import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { addressKey, createAddressMatcher, type AddressedRequest } from '@repo/http-access';
import type { Logger } from '@repo/log';
import type { AdmissionLedger, Reservation } from './connection-ledger.ts';
import { rejectUpgrade } from './http-routes.ts';
import type { GatewayLimits } from './limits.ts';
import { ThrottledWarning } from './throttled-warning.ts';

/**
 * Upgrades one worker may have waiting for the node's primary to count them. In a reconnect
 * storm upgrades arrive faster than the node can finish them; past this many, a further one is
 * answered 503 with `Retry-After` at once, before it costs an IPC round trip, a handshake and a
 * subscription that the client may give up on before they are done: refusals that cost little
 * and grow the client's backoff, instead of work that times out and comes straight back.
 */
export const MAX_PENDING_RESERVATIONS = 256;
const BUSY_RETRY_AFTER_S = 2;

/**
 * An accepted upgrade: the key its socket counts under (null when its address is exempt), and
 * the slot it holds in the ledger until `release()` (idempotent) gives it back.
 */
export interface Admission {
  readonly addressKey: string | null;
  release(): void;
}

/**
 * A slot held in the ledger. One is kept for the life of every socket, so it is a plain object
 * with its method on the prototype rather than a closure and its contexts (~100 B less each).
 */
class HeldSlot implements Admission {
  readonly addressKey: string | null;
  #ledger: AdmissionLedger | null;

  constructor(ledger: AdmissionLedger, addressKey: string | null) {
    this.#ledger = ledger;
    this.addressKey = addressKey;
  }

  release(): void {
    const ledger = this.#ledger;
    if (ledger === null) return;
    this.#ledger = null;
    ledger.release(this.addressKey);
  }
}

/**
 * Decides whether an HTTP upgrade may become a WebSocket: not while shutting down, only from
 * allowed origins, within the per-address attempt rate and open-socket cap, and within the
 * connection cap. A refused upgrade is answered with a plain HTTP status (403, 429 with
 * `Retry-After`, 503).
 *
 * The counting is the ledger's: a `ConnectionLedger` in this process (answered at once), or the
 * node's primary when the gateway runs as one of several workers (answered over IPC, so the
 * admission is then a promise). The per-address limits count the client address as
 * `clientAddress` resolves it (the peer, or the forwarded client behind a trusted proxy), by
 * `addressKey`; the addresses in `exempt` skip them but still count towards the connection cap.
 * Nothing is exempt by default, loopback included: a local proxy is made trusted, not exempt,
 * so that its clients are still told apart.
 */
export class UpgradeGuard {
  readonly #allowedOrigins: ReadonlySet<string> | null;
  readonly #ledger: AdmissionLedger;
  readonly #isExempt: (address: string | undefined) => boolean;
  readonly #clientAddress: (request: AddressedRequest) => string | undefined;
  readonly #limits: GatewayLimits;
  // Refused upgrades can come in floods (a hostile page, a reconnect storm): one log line per interval.
  readonly #warning: ThrottledWarning;
  readonly #maxPending: number;
  /** Reservations asked of the node's primary and not yet answered. */
  #pending = 0;

  constructor(deps: {
    limits: GatewayLimits;
    /** Null: every origin. Requests without an Origin header (non-browser clients) always pass. */
    allowedOrigins: readonly string[] | null;
    /** Addresses and CIDR blocks the per-address limits do not apply to. */
    exempt: readonly string[];
    /** The client address of a request (see `createClientAddress` of @repo/http-access). */
    clientAddress: (request: AddressedRequest) => string | undefined;
    /** Where slots are reserved: this process's, or the node's. */
    ledger: AdmissionLedger;
    logger: Logger;
    /** Reservations in flight to the node's primary at most; default `MAX_PENDING_RESERVATIONS`. */
    maxPendingReservations?: number;
  }) {
    this.#maxPending = deps.maxPendingReservations ?? MAX_PENDING_RESERVATIONS;
    this.#allowedOrigins = deps.allowedOrigins ? new Set(deps.allowedOrigins) : null;
    this.#limits = deps.limits;
    this.#ledger = deps.ledger;
    this.#clientAddress = deps.clientAddress;
    this.#isExempt = createAddressMatcher(deps.exempt);
    this.#warning = new ThrottledWarning(deps.logger);
  }

  /**
   * The admission when the upgrade may go on; otherwise null, and the refusal has been written
   * to `socket`. A promise when the ledger answers over IPC. The caller must `release()` the
   * admission when the socket closes, or at once if it does not go on with the upgrade.
   */
  admit(req: IncomingMessage, socket: Duplex, closing: boolean): Admission | null | Promise<Admission | null> {
    if (closing) {
      rejectUpgrade(socket, 503, 'server shutting down');
      return null;
    }
    const origin = req.headers.origin;
    if (this.#allowedOrigins && origin !== undefined && !this.#allowedOrigins.has(origin)) {
      this.#warning.warn({ reason: 'origin', origin: origin.slice(0, 200) }, 'upgrade refused: origin not allowed');
      rejectUpgrade(socket, 403, 'origin not allowed');
      return null;
    }
    const address = this.#clientAddress(req);
    const key = address === undefined || this.#isExempt(address) ? null : addressKey(address);
    if (this.#pending >= this.#maxPending) {
      // Refused before any work is spent on it: see MAX_PENDING_RESERVATIONS.
      this.#warning.warn({ reason: 'busy', max: this.#maxPending }, 'upgrade refused: too many upgrades in flight');
      rejectUpgrade(socket, 503, 'server busy', BUSY_RETRY_AFTER_S);
      return null;
    }
    const reservation = this.#ledger.reserve(key);
    if (reservation instanceof Promise) {
      this.#pending += 1;
      return reservation.then(
        (answer) => {
          this.#pending -= 1;
          return this.#decide(answer, key, socket);
        },
        (err: unknown) => {
          this.#pending -= 1;
          // The node's primary did not answer: refuse this one rather than admit it uncounted.
          this.#warning.warn({ reason: 'ledger', err: String(err) }, 'upgrade refused: connection ledger unavailable');
          rejectUpgrade(socket, 503, 'server busy');
          return null;
        },
      );
    }
    return this.#decide(reservation, key, socket);
  }

  #decide(reservation: Reservation, key: string | null, socket: Duplex): Admission | null {
    if (reservation.ok) return new HeldSlot(this.#ledger, key);
    switch (reservation.reason) {
      case 'address_rate':
        this.#warning.warn(
          { reason: 'address_rate', max: this.#limits.upgradesPerAddress },
          'upgrade refused: too many attempts from one address',
        );
        rejectUpgrade(socket, 429, 'too many connection attempts', Math.ceil(reservation.retryAfterMs / 1000) || 1);
        return null;
      case 'address_connections':
        this.#warning.warn(
          { reason: 'address_connections', max: this.#limits.maxConnectionsPerAddress },
          'upgrade refused: too many open connections from one address',
        );
        rejectUpgrade(socket, 429, 'too many open connections from this address');
        return null;
      case 'max_connections':
        this.#warning.warn(
          { reason: 'max_connections', max: this.#limits.maxConnections },
          'upgrade refused: connection limit reached',
        );
        rejectUpgrade(socket, 503, 'too many connections');
        return null;
    }
  }
}
