import { createHash, timingSafeEqual } from 'node:crypto';
import { isLoopback } from './address.ts';

/** What a `/metrics` request gets: served, or refused with the status and code to answer. */
export type MetricsAccess =
  | { allowed: true }
  | { allowed: false; status: 401; code: 'unauthorized'; headers: { 'WWW-Authenticate': 'Bearer' } }
  | { allowed: false; status: 403; code: 'forbidden' };

export interface MetricsRequest {
  /**
   * The client's address as the server trusts it: the socket peer, or the forwarded client
   * when the peer is a trusted proxy (Fastify's `request.ip` with `trustProxy`). Behind a
   * proxy on the same machine without that setting, every client looks like loopback.
   */
  clientAddress: string | undefined;
  /** The `Authorization` header, if any. */
  authorization: string | undefined;
}

/**
 * The rule for every process's `/metrics`: without a token, only loopback clients are served
 * (a scraper on the same machine, or one reaching it through an SSH tunnel); with a token
 * (`METRICS_TOKEN`), every client must send `Authorization: Bearer <token>`, loopback too.
 * The token is compared in constant time. `token` is checked once, here.
 */
export function createMetricsAccess(token: string | undefined): (request: MetricsRequest) => MetricsAccess {
  if (token !== undefined && !/^[\x21-\x7e]{16,256}$/.test(token)) {
    throw new TypeError('metrics token must be 16-256 visible ASCII characters');
  }
  const expected = token === undefined ? undefined : digest(token);
  return ({ clientAddress, authorization }) => {
    if (expected === undefined) {
      return isLoopback(clientAddress) ? { allowed: true } : { allowed: false, status: 403, code: 'forbidden' };
    }
    const match = /^Bearer +(\S+)$/i.exec(authorization ?? '');
    if (match && timingSafeEqual(digest(match[1]!), expected)) return { allowed: true };
    return { allowed: false, status: 401, code: 'unauthorized', headers: { 'WWW-Authenticate': 'Bearer' } };
  };
}

/** Equal-length digests, so the comparison does not leak the token's length either. */
function digest(value: string): Buffer {
  return createHash('sha256').update(value, 'utf8').digest();
}
