import { EVENT_KINDS, type EventKind, type EventOf } from './kinds.ts';

type DecodeResult<K extends EventKind> =
  | { ok: true; event: EventOf<K> }
  | { ok: false; reason: 'invalid_json' | 'invalid_shape' | 'too_large'; detail: string };

/**
 * Longest raw event accepted, in UTF-16 code units. The largest valid event (a portfolio of
 * 100 balances and 100 positions at their longest) is about 35 KB; a message far past that is
 * refused before `JSON.parse`, so a confused publisher cannot make every gateway parse megabytes.
 */
export const MAX_EVENT_LENGTH = 256 * 1024;

/**
 * Decodes one raw message from a broker channel. Never throws: a confused publisher's
 * message is reported as a value for the caller to drop, log and count.
 */
export function decodeEvent<K extends EventKind>(kind: K, raw: string): DecodeResult<K> {
  if (raw.length > MAX_EVENT_LENGTH) {
    return { ok: false, reason: 'too_large', detail: `${raw.length} characters; at most ${MAX_EVENT_LENGTH}` };
  }
  let data: unknown;
  try {
    data = JSON.parse(raw);
  } catch (err) {
    return { ok: false, reason: 'invalid_json', detail: (err as Error).message };
  }
  const parsed = EVENT_KINDS[kind].schema.safeParse(data);
  if (!parsed.success) {
    return {
      ok: false,
      reason: 'invalid_shape',
      detail: parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; '),
    };
  }
  return { ok: true, event: parsed.data as EventOf<K> };
}
