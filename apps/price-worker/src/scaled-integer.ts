/** Longest integer string accepted: Pyth prices are i64 (19 digits); the margin costs nothing. */
const MAX_INTEGER_DIGITS = 40;
/** Largest |expo| accepted; Pyth feeds use about -12..0, anything far beyond is a broken feed. */
const MAX_ABS_EXPONENT = 40;

const INTEGER = /^-?\d+$/;

/**
 * `integer × 10^expo` as a canonical decimal string, exactly: the decimal point is moved in
 * the digit string, so no binary float or rounding is ever involved.
 * Canonical: no exponent notation, no leading zeros, no trailing fractional zeros, "0" for zero.
 *
 *   scaleInteger("23145000000", -8) === "231.45"
 *   scaleInteger("15", 3)           === "15000"
 *
 * Throws a RangeError when `integer` is not an integer string or `expo` is out of range.
 */
export function scaleInteger(integer: string, expo: number): string {
  if (typeof integer !== 'string' || !INTEGER.test(integer) || integer.replace('-', '').length > MAX_INTEGER_DIGITS) {
    throw new RangeError(
      `not an integer string of at most ${MAX_INTEGER_DIGITS} digits: ${JSON.stringify(String(integer).slice(0, 50))}`,
    );
  }
  if (!Number.isInteger(expo) || Math.abs(expo) > MAX_ABS_EXPONENT) {
    throw new RangeError(`exponent must be an integer within ±${MAX_ABS_EXPONENT}, got ${String(expo)}`);
  }
  const negative = integer.startsWith('-');
  const digits = (negative ? integer.slice(1) : integer).replace(/^0+/, '');
  if (digits === '') return '0';

  let result: string;
  if (expo >= 0) {
    result = digits + '0'.repeat(expo);
  } else {
    const places = -expo;
    const padded = digits.padStart(places + 1, '0');
    const whole = padded.slice(0, padded.length - places);
    const fraction = padded.slice(padded.length - places).replace(/0+$/, '');
    result = fraction === '' ? whole : `${whole}.${fraction}`;
  }
  return negative ? `-${result}` : result;
}
