import type { IncomingHttpHeaders } from 'node:http';
import { isIP } from 'node:net';
import proxyAddr from '@fastify/proxy-addr';

/** What the client address is read from: a Node request (`IncomingMessage`) has both. */
export interface AddressedRequest {
  readonly socket: { readonly remoteAddress?: string | undefined };
  readonly headers: IncomingHttpHeaders;
}

/** True for an IP address or a CIDR block (`203.0.113.7`, `10.0.0.0/8`, `2001:db8::/32`). */
export function isAddressOrCidr(value: string): boolean {
  const slash = value.indexOf('/');
  if (slash === -1) return isIP(value) !== 0;
  const version = isIP(value.slice(0, slash));
  const prefix = value.slice(slash + 1);
  if (version === 0 || !/^\d{1,3}$/.test(prefix)) return false;
  return Number(prefix) <= (version === 4 ? 32 : 128);
}

/** A list of addresses and CIDRs as written in `TRUST_PROXY` or `WS_LIMIT_EXEMPT`, checked. */
function checkedList(list: readonly string[], what: string): string[] {
  const bad = list.find((entry) => !isAddressOrCidr(entry));
  if (bad !== undefined) throw new TypeError(`${what}: ${JSON.stringify(bad)} is not an IP address or CIDR block`);
  return [...list];
}

/**
 * A membership test for a list of addresses and CIDR blocks (for `WS_LIMIT_EXEMPT`). An
 * IPv4-mapped IPv6 address (`::ffff:10.0.0.1`) matches its IPv4 form. An empty list matches
 * nothing. Throws a `TypeError` naming an entry that is neither an address nor a CIDR.
 */
export function createAddressMatcher(list: readonly string[]): (address: string | undefined) => boolean {
  const entries = checkedList(list, 'address list');
  if (entries.length === 0) return () => false;
  const matches = proxyAddr.compile(entries);
  return (address) => address !== undefined && matches(address, 0);
}

/**
 * How a server finds the client behind a request, for every per-address limit and the
 * `/metrics` loopback rule. Without trusted proxies it is the socket's peer, whatever the
 * headers say. With them (`TRUST_PROXY`), `X-Forwarded-For` is walked from the right while
 * each hop is a trusted proxy, and the first address that is not is the client: the rule
 * Fastify applies for `trustProxy` (both use proxy-addr), so the API and the gateway always
 * agree on who a client is. A client cannot forge its way past it: the entries it writes
 * itself are left of the address its first trusted proxy appended.
 */
export function createClientAddress(trustProxy: readonly string[]): (request: AddressedRequest) => string | undefined {
  const entries = checkedList(trustProxy, 'trusted proxies');
  if (entries.length === 0) return (request) => request.socket.remoteAddress;
  const trusted = proxyAddr.compile(entries);
  return (request) => {
    // proxy-addr reads `socket.remoteAddress`, which is undefined once the socket closed.
    if (request.socket.remoteAddress === undefined) return undefined;
    return proxyAddr(request as Parameters<typeof proxyAddr>[0], trusted);
  };
}
