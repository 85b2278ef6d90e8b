import Big from 'big.js';

/**
 * Exact decimal arithmetic for money and sizes, never binary floats.
 *
 * Canonical form (what is stored, returned and published): plain notation without exponent,
 * sign, leading zeros or trailing fractional zeros, and no trailing dot: "0", "10", "2314.5",
 * "0.23145", "0.000000001". At most `MONEY_SCALE` (18) fractional digits, the most an event
 * may carry.
 */

/** Fractional digits kept by every computed amount (fee, cost, average price). */
export const MONEY_SCALE = 18;
/** Fractional digits an order size may have. */
export const SIZE_SCALE = 9;

// A private constructor so that our DP/RM/exponent settings cannot leak into (or be changed
// by) other users of big.js in the same process.
const Dec = Big();
Dec.DP = MONEY_SCALE;
Dec.RM = 1; // ROUND_HALF_UP
// Never switch to exponent notation in toString().
Dec.NE = -1_000_000;
Dec.PE = 1_000_000;

export type Decimal = Big.Big;

/** Parses a decimal string (or a number-free Big) exactly. Throws on anything else. */
export function dec(value: string | Decimal): Decimal {
  return new Dec(value);
}

/** Rounds half-up to `MONEY_SCALE` decimals. */
export function roundMoney(value: Decimal): Decimal {
  return value.round(MONEY_SCALE, 1);
}

/**
 * Rounds to `MONEY_SCALE` decimals in the house's favour: `up` for what the user pays (a buy's
 * cost, any fee), `down` for what the user is paid (a sell's proceeds), so that rounding never
 * creates money, nor fills an order for nothing.
 */
export function roundCharge(value: Decimal, direction: 'up' | 'down'): Decimal {
  return value.round(MONEY_SCALE, direction === 'up' ? 3 : 0);
}

/** The canonical string of `value` (see the module comment). */
export function canonical(value: string | Decimal): string {
  const text = (typeof value === 'string' ? dec(value) : value).toFixed();
  // big.js keeps the sign of a negative zero ("-0").
  return text === '-0' ? '0' : text;
}

/** The canonical string of a nullable column value. */
export function canonicalOrNull(value: string | null): string | null {
  return value === null ? null : canonical(value);
}

/** Plain decimal syntax: digits, optional fraction, no sign, no exponent, no leading zeros. */
const PLAIN_DECIMAL = /^(?:0|[1-9]\d*)(?:\.\d+)?$/;

export type SizeCheck =
  { ok: true; size: string } | { ok: false; reason: 'not_decimal' | 'too_precise' | 'not_positive' | 'too_large' };

/**
 * Checks an order size: a positive plain decimal string with at most `SIZE_SCALE` decimals
 * and no larger than `max`. Returns the canonical size.
 */
export function checkSize(input: string, max: string): SizeCheck {
  if (input.length > 64 || !PLAIN_DECIMAL.test(input)) return { ok: false, reason: 'not_decimal' };
  const dot = input.indexOf('.');
  // Trailing zeros carry no precision: "1.5000000000" is 1.5.
  const fraction = dot === -1 ? '' : input.slice(dot + 1).replace(/0+$/, '');
  if (fraction.length > SIZE_SCALE) return { ok: false, reason: 'too_precise' };
  const value = dec(input);
  if (value.lte(0)) return { ok: false, reason: 'not_positive' };
  if (value.gt(max)) return { ok: false, reason: 'too_large' };
  return { ok: true, size: canonical(value) };
}
