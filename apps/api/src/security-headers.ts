import type { IncomingMessage, ServerResponse } from 'node:http';
import type { FastifyInstance } from 'fastify';
import helmet, { type HelmetOptions } from 'helmet';

/** Sets the security headers on a raw response; calls `next` with an error when it could not. */
export type SetSecurityHeaders = (
  request: IncomingMessage,
  response: ServerResponse,
  next: (err?: unknown) => void,
) => void;

type HeaderWrite = readonly [name: string, value: string | null];

/**
 * Helmet's middleware, built once, here. @fastify/helmet builds it again on every request,
 * re-parsing the whole Content-Security-Policy each time: about 5 % of the API's CPU per order
 * in the order benchmark's profile.
 *
 * When no option is a function, every header helmet sets is the same on every answer, so it runs
 * once, against a response that records what it sets and removes, and each answer replays that:
 * the CSP is no longer joined and a chain of a dozen middlewares no longer walked per request (the
 * answers' headers were the largest share of what an order leaves to the old generation). A
 * directive given as a function (e.g. the gateway's origin taken from the Host header) keeps the
 * middleware itself, per request.
 */
export function createSecurityHeaders(options: Readonly<HelmetOptions>): SetSecurityHeaders {
  const middleware = helmet(options);
  if (containsFunction(options)) return middleware;
  const writes = recordHeaderWrites(middleware);
  return (_request, response, next) => {
    for (const [name, value] of writes) {
      if (value === null) response.removeHeader(name);
      else response.setHeader(name, value);
    }
    next();
  };
}

/** Runs `middleware` once against a stand-in response; throws what it would have failed an answer with. */
function recordHeaderWrites(middleware: SetSecurityHeaders): HeaderWrite[] {
  const writes: HeaderWrite[] = [];
  const recorder = {
    setHeader(name: string, value: unknown) {
      writes.push([name, String(value)]);
      return recorder;
    },
    removeHeader(name: string) {
      writes.push([name, null]);
    },
  };
  let outcome: { err?: unknown } | undefined;
  middleware({} as IncomingMessage, recorder as unknown as ServerResponse, (err) => {
    outcome = { err };
  });
  // Helmet's middlewares are synchronous; one that were not could not be replayed.
  if (outcome === undefined) throw new Error('the security headers middleware did not finish synchronously');
  // Static options that fail would fail every answer: refuse them at start instead.
  const { err } = outcome;
  if (err !== undefined) throw err instanceof Error ? err : new Error('the security headers middleware failed');
  return writes;
}

function containsFunction(value: unknown): boolean {
  if (typeof value === 'function') return true;
  if (value === null || typeof value !== 'object') return false;
  return Object.values(value).some(containsFunction);
}

/**
 * The security headers on every answer, errors and 404s included (an `onRequest` hook, so they
 * are set before any route or error handler runs). Answers Fastify gives before any hook (a
 * malformed URL) set them through `frameworkErrors` instead.
 */
export function registerSecurityHeaders(
  app: FastifyInstance,
  options: Readonly<HelmetOptions> | SetSecurityHeaders,
): void {
  const setHeaders = typeof options === 'function' ? options : createSecurityHeaders(options);
  app.addHook('onRequest', (request, reply, done) => {
    // Helmet 8.3 reports a bad dynamic directive (a function that throws or returns `;`) by
    // calling next with it, having set no header after it: that answer must fail, not go out
    // without its security headers.
    setHeaders(request.raw, reply.raw, (err?: unknown) => done(err as Error | undefined));
  });
}
