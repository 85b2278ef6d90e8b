import { isChannel, type ClientMessage, type ErrorCode, type RequestId } from '@repo/protocol';

/** A client frame decoded into a request, or the error to answer it with. */
export type ParsedClientMessage =
  { ok: true; message: ClientMessage } | { ok: false; code: ErrorCode; message: string; id?: RequestId };

const MAX_ID_LENGTH = 128;
const MAX_TOKEN_LENGTH = 4096;

/**
 * Decodes one client frame. Never throws. Unknown fields are ignored (a newer client may send
 * more); a wrong or missing known field is `invalid_message`; a channel name that is not one
 * of ours is `unknown_channel`. The request `id` is echoed on the error when it is valid.
 *
 * Hand-written rather than zod: it runs for every client frame and the shapes are four flat
 * objects.
 */
export function parseClientMessage(data: Buffer | ArrayBuffer | Buffer[], isBinary: boolean): ParsedClientMessage {
  if (isBinary) return invalid('binary frames are not accepted; send JSON text');
  const text = Array.isArray(data)
    ? Buffer.concat(data).toString('utf8')
    : Buffer.from(data as Buffer).toString('utf8');
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { ok: false, code: 'invalid_json', message: 'message is not valid JSON' };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return invalid('message must be a JSON object');
  }
  const fields = value as Record<string, unknown>;
  const rawId = Object.hasOwn(fields, 'id') ? fields.id : undefined;
  let id: RequestId | undefined;
  if (rawId !== undefined) {
    if (
      (typeof rawId === 'string' && rawId.length <= MAX_ID_LENGTH) ||
      (typeof rawId === 'number' && Number.isFinite(rawId))
    ) {
      id = rawId;
    } else {
      return invalid(`"id" must be a string of at most ${MAX_ID_LENGTH} characters or a finite number`);
    }
  }
  const withId = <T extends object>(message: T): T & { id?: RequestId } =>
    id === undefined ? message : { ...message, id };
  const type = Object.hasOwn(fields, 'type') ? fields.type : undefined;
  switch (type) {
    case 'auth': {
      const token = Object.hasOwn(fields, 'token') ? fields.token : undefined;
      if (typeof token !== 'string' || token.length === 0 || token.length > MAX_TOKEN_LENGTH) {
        return invalid('"auth" needs a non-empty string "token"', id);
      }
      return { ok: true, message: withId({ type: 'auth', token }) };
    }
    case 'subscribe':
    case 'unsubscribe': {
      const channel = Object.hasOwn(fields, 'channel') ? fields.channel : undefined;
      if (typeof channel !== 'string') return invalid(`"${type}" needs a string "channel"`, id);
      if (!isChannel(channel)) {
        return {
          ok: false,
          code: 'unknown_channel',
          message: 'channel must be one of prices, orders, portfolio',
          ...(id === undefined ? {} : { id }),
        };
      }
      if (type === 'unsubscribe') return { ok: true, message: withId({ type, channel }) };
      const since = Object.hasOwn(fields, 'since') ? fields.since : undefined;
      if (since !== undefined && !(typeof since === 'number' && Number.isSafeInteger(since) && since >= 0)) {
        return invalid('"since" must be a non-negative integer', id);
      }
      return { ok: true, message: withId(since === undefined ? { type, channel } : { type, channel, since }) };
    }
    case 'ping':
      return { ok: true, message: withId({ type: 'ping' }) };
    default:
      return invalid(typeof type === 'string' ? 'unknown message type' : 'message needs a string "type"', id);
  }
}

function invalid(message: string, id?: RequestId): ParsedClientMessage {
  return { ok: false, code: 'invalid_message', message, ...(id === undefined ? {} : { id }) };
}
