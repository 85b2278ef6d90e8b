import { customType } from 'drizzle-orm/pg-core';

/**
 * 64-bit integer columns read as JavaScript numbers. The drivers hand int8 over as a string
 * (node-postgres) or a number or bigint (PGlite); a value past 2^53 − 1 would turn into a
 * different number without a word, so it is refused instead. Ids and counters never get
 * there in practice (at a million orders a second that is 285 years away).
 */
export function toSafeInteger(value: unknown): number {
  const n =
    typeof value === 'number' ? value : typeof value === 'string' || typeof value === 'bigint' ? Number(value) : NaN;
  if (!Number.isSafeInteger(n) || (typeof value === 'string' && !/^-?\d+$/.test(value))) {
    throw new RangeError(`64-bit integer ${String(value).slice(0, 40)} is not a safe JavaScript integer`);
  }
  return n;
}

/** `bigint` column, read through `toSafeInteger`. */
export const int64 = customType<{ data: number; driverData: string | number | bigint }>({
  dataType: () => 'bigint',
  fromDriver: toSafeInteger,
});

/** `bigserial` primary key, read through `toSafeInteger`. */
export const bigserialId = customType<{
  data: number;
  driverData: string | number | bigint;
  notNull: true;
  default: true;
}>({
  dataType: () => 'bigserial',
  fromDriver: toSafeInteger,
});
