import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from '@repo/log';
import type { SetSecurityHeaders } from './security-headers.ts';

/**
 * Every error code the HTTP API answers with, in `{"error":{"code","message"}}`. The same table
 * is in docs/api.md; clients switch on the code, never on the message.
 */
export const API_ERRORS = {
  invalid_json: 400,
  invalid_request: 400,
  unknown_symbol: 400,
  unauthorized: 401,
  invalid_credentials: 401,
  forbidden: 403,
  not_found: 404,
  username_taken: 409,
  payload_too_large: 413,
  unsupported_media_type: 415,
  idempotency_key_reused: 422,
  rate_limited: 429,
  internal_error: 500,
} as const;

export type ApiErrorCode = keyof typeof API_ERRORS;

/** A known failure: answered with its status and a message safe to show. */
export class ApiError extends Error {
  readonly code: ApiErrorCode;
  readonly statusCode: number;
  /** Extra response headers, e.g. `Retry-After`. */
  readonly headers: Record<string, string>;

  constructor(code: ApiErrorCode, message: string, headers: Record<string, string> = {}) {
    super(message);
    this.name = 'ApiError';
    this.code = code;
    this.statusCode = API_ERRORS[code];
    this.headers = headers;
  }
}

export function errorBody(code: ApiErrorCode, message: string) {
  return { error: { code, message } };
}

/** Fastify's own client errors (body parsing), mapped to our codes. */
const FASTIFY_CLIENT_ERRORS: Record<string, [ApiErrorCode, string]> = {
  FST_ERR_CTP_INVALID_JSON_BODY: ['invalid_json', 'request body is not valid JSON'],
  FST_ERR_CTP_EMPTY_JSON_BODY: ['invalid_json', 'request body is empty'],
  FST_ERR_CTP_BODY_TOO_LARGE: ['payload_too_large', 'request body is too large'],
  FST_ERR_CTP_INVALID_MEDIA_TYPE: ['unsupported_media_type', 'request body must be application/json'],
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: ['invalid_request', 'content-length does not match the body'],
};

/**
 * Known errors get their status and message; anything else is logged and answered with a
 * plain 500 that says nothing about its cause.
 */
export function createErrorHandler(logger: Logger) {
  return (err: FastifyError | Error, request: FastifyRequest, reply: FastifyReply) => {
    if (err instanceof ApiError) {
      return reply.code(err.statusCode).headers(err.headers).send(errorBody(err.code, err.message));
    }
    const fastifyCode = (err as FastifyError).code;
    const mapped = fastifyCode ? FASTIFY_CLIENT_ERRORS[fastifyCode] : undefined;
    if (mapped) {
      return reply.code(API_ERRORS[mapped[0]]).send(errorBody(mapped[0], mapped[1]));
    }
    const status = (err as FastifyError).statusCode;
    if (typeof status === 'number' && status >= 400 && status < 500) {
      // Another client error raised by Fastify itself; its text may name internals, so a
      // generic message goes out.
      return reply.code(status).send(errorBody('invalid_request', 'bad request'));
    }
    logger.error({ err, method: request.method, route: request.routeOptions.url ?? 'unmatched' }, 'unhandled error');
    return reply.code(500).send(errorBody('internal_error', 'internal server error'));
  };
}

/**
 * Fastify's `frameworkErrors`: the errors its router answers before any hook runs (a URL that
 * does not decode, a route parameter past its length). Fastify's own answer would echo the
 * path and go out without the security headers, which no hook has set yet.
 */
export function createFrameworkErrorHandler(logger: Logger, setSecurityHeaders: SetSecurityHeaders) {
  return (err: FastifyError, request: FastifyRequest, reply: FastifyReply): void => {
    setSecurityHeaders(request.raw, reply.raw, (headersErr?: unknown) => {
      if (headersErr) {
        logger.error({ err: headersErr }, 'security headers failed on a framework error');
        void reply.code(500).send(errorBody('internal_error', 'internal server error'));
        return;
      }
      if (err.code === 'FST_ERR_BAD_URL' || err.code === 'FST_ERR_MAX_PARAM_LENGTH') {
        void reply.code(400).send(errorBody('invalid_request', 'the request URL is not valid'));
        return;
      }
      logger.error({ err, method: request.method }, 'unhandled framework error');
      void reply.code(500).send(errorBody('internal_error', 'internal server error'));
    });
  };
}
