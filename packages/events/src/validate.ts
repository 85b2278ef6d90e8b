import { EventValidationError } from './errors.ts';
import { EVENT_KINDS, type EventKind, type EventOf } from './kinds.ts';

/**
 * Validates `input` against the kind's schema, filling a missing `timestamp` with now for the
 * kinds that carry one. Throws `EventValidationError` (so a publisher publishes nothing) when it
 * does not fit. Unknown keys are stripped.
 */
export function validateEvent<K extends EventKind>(
  kind: K,
  input: unknown,
  now: () => Date = () => new Date(),
): EventOf<K> {
  const schema = EVENT_KINDS[kind].schema;
  const withTimestamp =
    'timestamp' in schema.shape &&
    input &&
    typeof input === 'object' &&
    !Array.isArray(input) &&
    (input as { timestamp?: unknown }).timestamp === undefined
      ? { ...input, timestamp: now().toISOString() }
      : input;
  const parsed = schema.safeParse(withTimestamp);
  if (!parsed.success) {
    throw new EventValidationError(
      kind,
      parsed.error.issues.map((i) => ({ path: i.path.join('.'), message: i.message })),
    );
  }
  return parsed.data as EventOf<K>;
}
