import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { addressKey, createAddressMatcher, type AddressedRequest } from '@repo/http-access';
import type { Logger } from '@repo/log';
import { AddressConnections } from './address-connections.ts';
import { AddressRateLimiter } from './address-rate-limiter.ts';
import { rejectUpgrade } from './http-routes.ts';
import type { GatewayLimits } from './limits.ts';
import { ThrottledWarning } from './throttled-warning.ts';

/** An accepted upgrade: the key its socket counts under, null when its address is exempt. */
export interface Admission {
  readonly addressKey: string | null;
}

const EXEMPT: Admission = { addressKey: null };

/**
 * Decides whether an HTTP upgrade may become a WebSocket: not while shutting down, only from
 * allowed origins, within the per-address attempt rate and open-socket cap, and within the
 * process's connection cap. A refused upgrade is answered with a plain HTTP status (403, 429
 * with `Retry-After`, 503).
 *
 * The per-address limits count the client address as `clientAddress` resolves it (the peer,
 * or the forwarded client behind a trusted proxy), by `addressKey`; the addresses in `exempt`
 * skip them. Nothing is exempt by default, loopback included: a local proxy is made trusted,
 * not exempt, so that its clients are still told apart.
 */
export class UpgradeGuard {
  readonly #allowedOrigins: ReadonlySet<string> | null;
  readonly #attempts: AddressRateLimiter;
  readonly #open: AddressConnections;
  readonly #isExempt: (address: string | undefined) => boolean;
  readonly #clientAddress: (request: AddressedRequest) => string | undefined;
  readonly #limits: GatewayLimits;
  readonly #connections: () => number;
  // Refused upgrades can come in floods (a hostile page, a reconnect storm): one log line per interval.
  readonly #warning: ThrottledWarning;

  constructor(deps: {
    limits: GatewayLimits;
    /** Null: every origin. Requests without an Origin header (non-browser clients) always pass. */
    allowedOrigins: readonly string[] | null;
    /** Addresses and CIDR blocks the per-address limits do not apply to. */
    exempt: readonly string[];
    /** The client address of a request (see `createClientAddress` of @repo/http-access). */
    clientAddress: (request: AddressedRequest) => string | undefined;
    /** Open connections now. */
    connections: () => number;
    logger: Logger;
  }) {
    this.#allowedOrigins = deps.allowedOrigins ? new Set(deps.allowedOrigins) : null;
    this.#limits = deps.limits;
    this.#connections = deps.connections;
    this.#clientAddress = deps.clientAddress;
    this.#isExempt = createAddressMatcher(deps.exempt);
    this.#warning = new ThrottledWarning(deps.logger);
    this.#attempts = new AddressRateLimiter({
      limit: deps.limits.upgradesPerAddress,
      windowMs: deps.limits.upgradeWindowMs,
    });
    this.#open = new AddressConnections(deps.limits.maxConnectionsPerAddress);
  }

  /** The admission when the upgrade may go on; otherwise null, and the refusal has been written to `socket`. */
  admit(req: IncomingMessage, socket: Duplex, closing: boolean): Admission | null {
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
    const admission = this.#admitAddress(req, socket);
    if (admission === null) return null;
    if (this.#connections() >= this.#limits.maxConnections) {
      this.#warning.warn(
        { reason: 'max_connections', max: this.#limits.maxConnections },
        'upgrade refused: connection limit reached',
      );
      rejectUpgrade(socket, 503, 'too many connections');
      return null;
    }
    return admission;
  }

  /**
   * A socket admitted with `admission` opened. Counted here, once the handshake is done, so a
   * handshake that fails (ws answers it and never calls back) holds no slot; ws completes an
   * upgrade synchronously, so nothing can slip in between the check and the count.
   */
  opened(admission: Admission): void {
    if (admission.addressKey !== null) this.#open.add(admission.addressKey);
  }

  /** The socket counted under `addressKey` closed. */
  closed(addressKey: string | null): void {
    if (addressKey !== null) this.#open.remove(addressKey);
  }

  #admitAddress(req: IncomingMessage, socket: Duplex): Admission | null {
    const address = this.#clientAddress(req);
    if (address === undefined || this.#isExempt(address)) return EXEMPT;
    const key = addressKey(address);
    const now = Date.now();
    if (!this.#attempts.take(key, now)) {
      this.#warning.warn(
        { reason: 'address_rate', max: this.#limits.upgradesPerAddress },
        'upgrade refused: too many attempts from one address',
      );
      const retryAfter = Math.ceil(this.#attempts.retryAfterMs(now) / 1000) || 1;
      rejectUpgrade(socket, 429, 'too many connection attempts', retryAfter);
      return null;
    }
    if (!this.#open.hasRoom(key)) {
      this.#warning.warn(
        { reason: 'address_connections', max: this.#limits.maxConnectionsPerAddress },
        'upgrade refused: too many open connections from one address',
      );
      rejectUpgrade(socket, 429, 'too many open connections from this address');
      return null;
    }
    return { addressKey: key };
  }
}
