import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Logger } from '@repo/log';
import { AddressRateLimiter } from './address-rate-limiter.ts';
import { rejectUpgrade } from './http-routes.ts';
import type { GatewayLimits } from './limits.ts';
import { ThrottledWarning } from './throttled-warning.ts';

/**
 * Decides whether an HTTP upgrade may become a WebSocket: not while shutting down, only from
 * allowed origins, within the per-address attempt limit and the connection cap. A refused
 * upgrade is answered with a plain HTTP status (403, 429 with `Retry-After`, 503).
 */
export class UpgradeGuard {
  readonly #allowedOrigins: ReadonlySet<string> | null;
  readonly #attempts: AddressRateLimiter;
  readonly #limits: GatewayLimits;
  readonly #connections: () => number;
  // Refused upgrades can come in floods (a hostile page, a reconnect storm): one log line per interval.
  readonly #warning: ThrottledWarning;

  constructor(deps: {
    limits: GatewayLimits;
    /** Null: every origin. Requests without an Origin header (non-browser clients) always pass. */
    allowedOrigins: readonly string[] | null;
    /** Addresses the per-address limit does not apply to. */
    exempt: readonly string[];
    /** Open connections now. */
    connections: () => number;
    logger: Logger;
  }) {
    this.#allowedOrigins = deps.allowedOrigins ? new Set(deps.allowedOrigins) : null;
    this.#limits = deps.limits;
    this.#connections = deps.connections;
    this.#warning = new ThrottledWarning(deps.logger);
    this.#attempts = new AddressRateLimiter({
      limit: deps.limits.upgradesPerAddress,
      windowMs: deps.limits.upgradeWindowMs,
      exempt: deps.exempt,
    });
  }

  /** True when the upgrade may go on; otherwise the refusal has been written to `socket`. */
  admit(req: IncomingMessage, socket: Duplex, closing: boolean): boolean {
    if (closing) {
      rejectUpgrade(socket, 503, 'server shutting down');
      return false;
    }
    const origin = req.headers.origin;
    if (this.#allowedOrigins && origin !== undefined && !this.#allowedOrigins.has(origin)) {
      this.#warning.warn({ reason: 'origin', origin: origin.slice(0, 200) }, 'upgrade refused: origin not allowed');
      rejectUpgrade(socket, 403, 'origin not allowed');
      return false;
    }
    const now = Date.now();
    if (!this.#attempts.take(req.socket.remoteAddress, now)) {
      this.#warning.warn(
        { reason: 'address_rate', max: this.#limits.upgradesPerAddress },
        'upgrade refused: too many attempts from one address',
      );
      rejectUpgrade(
        socket,
        429,
        'too many connection attempts',
        Math.ceil(this.#attempts.retryAfterMs(now) / 1000) || 1,
      );
      return false;
    }
    if (this.#connections() >= this.#limits.maxConnections) {
      this.#warning.warn(
        { reason: 'max_connections', max: this.#limits.maxConnections },
        'upgrade refused: connection limit reached',
      );
      rejectUpgrade(socket, 503, 'too many connections');
      return false;
    }
    return true;
  }
}
