/**
 * Money on the page: every amount arrives as a decimal string and is computed and formatted
 * with big.js, never through a binary float, so "0.1 + 0.2" stays 0.3 and a fee of
 * 0.23145 is shown as the server charged it.
 */
import Big from 'big.js';

/** Sizes the API accepts: positive, at most 9 decimals, no exponent. */
const SIZE_PATTERN = /^(?:0|[1-9]\d{0,14})(?:\.\d{1,9})?$/;
const DECIMAL = /^-?\d+(?:\.\d+)?$/;

/** A Big from an API decimal string, or null when the string is not a plain decimal. */
function toBig(value: string | null | undefined): Big | null {
  if (typeof value !== 'string' || !DECIMAL.test(value)) return null;
  return new Big(value);
}

export type SizeCheck = { ok: true; size: string } | { ok: false; message: string };

/**
 * Validates what the user typed in the Size field, with a message a person can act on; `size`
 * is the decimal to send. A lone comma is the decimal separator of a comma locale (iOS offers
 * only "," on the decimal keypad there), so "0,5" is 0.5. A comma is never a thousands
 * separator: "1,000" is 1, and a size with a dot and a comma, or two commas, is refused rather
 * than guessed, since reading it as thousands would place an order many times larger.
 */
export function checkSize(input: string): SizeCheck {
  const typed = input.trim();
  const text = !typed.includes('.') && typed.split(',').length === 2 ? typed.replace(',', '.') : typed;
  if (text === '') return { ok: false, message: 'Enter a size' };
  if (!SIZE_PATTERN.test(text)) {
    return /\.\d{10,}$/.test(text)
      ? { ok: false, message: 'At most 9 decimals' }
      : { ok: false, message: 'Enter a number such as 1.5' };
  }
  if (new Big(text).lte(0)) return { ok: false, message: 'Size must be more than 0' };
  return { ok: true, size: text };
}

export interface OrderEstimate {
  /** price × size */
  notional: string;
  /** notional × the server's fee rate */
  fee: string;
  /** What a buy takes from USD: notional + fee. */
  buyTotal: string;
  /** What a sell adds to USD: notional − fee. */
  sellProceeds: string;
}

/** Decimals the server keeps of a fee; it rounds a fee up beyond them. */
const FEE_DP = 18;

/** The estimate shown in the order ticket at the live price, at the server's fee rate (`GET /config`). */
export function estimateOrder(price: string, size: string, feeRate: string): OrderEstimate | null {
  const p = toBig(price);
  const s = toBig(size);
  if (!p || !s) return null;
  const notional = p.times(s);
  // Rounded up at 18 decimals, as the server charges it (docs/api.md, paper-trading rules).
  const fee = notional.times(feeRate).round(FEE_DP, Big.roundUp);
  return {
    notional: notional.toFixed(),
    fee: fee.toFixed(),
    buyTotal: notional.plus(fee).toFixed(),
    sellProceeds: notional.minus(fee).toFixed(),
  };
}

/** Unrealised P&L of a position: size × (price − average entry). */
export function unrealisedPnl(size: string, avgEntryPrice: string, price: string): string | null {
  const s = toBig(size);
  const entry = toBig(avgEntryPrice);
  const p = toBig(price);
  if (!s || !entry || !p) return null;
  return s.times(p.minus(entry)).toFixed();
}

/** Change since a reference price: absolute and percent (2 decimals). */
export function priceChange(from: string, to: string): { diff: string; percent: string } | null {
  const a = toBig(from);
  const b = toBig(to);
  if (!a || !b || a.eq(0)) return null;
  const diff = b.minus(a);
  return { diff: diff.toFixed(), percent: diff.div(a).times(100).toFixed(2) };
}

/** Sum of decimal strings (nulls count as 0). */
export function sum(values: readonly (string | null | undefined)[]): string {
  return values.reduce((acc: Big, v) => acc.plus(toBig(v) ?? 0), new Big(0)).toFixed();
}

export function times(a: string, b: string): string | null {
  const x = toBig(a);
  const y = toBig(b);
  return x && y ? x.times(y).toFixed() : null;
}

/**
 * The one spelling of a decimal string ("0.50" → "0.5", "007" → "7"), so that two spellings of
 * one amount compare equal as text; a malformed string is returned as it is.
 */
export function canonicalDecimal(value: string): string {
  return toBig(value)?.toFixed() ?? value;
}

/** Orders two decimal strings exactly (-1, 0 or 1); a malformed one sorts as the smallest. */
export function compareDecimal(a: string, b: string): -1 | 0 | 1 {
  const x = toBig(a);
  const y = toBig(b);
  if (!x || !y) return x ? 1 : y ? -1 : 0;
  return x.cmp(y);
}

export function sign(value: string | null | undefined): -1 | 0 | 1 {
  const v = toBig(value);
  if (!v || v.eq(0)) return 0;
  return v.gt(0) ? 1 : -1;
}

/** "1234567.891" → "1,234,567.891"; the digits are untouched, only grouped. */
function group(fixed: string): string {
  const negative = fixed.startsWith('-');
  const [int = '0', frac] = (negative ? fixed.slice(1) : fixed).split('.');
  const grouped = int.replace(/\B(?=(\d{3})+(?!\d))/g, ',');
  return (negative ? '-' : '') + grouped + (frac !== undefined ? `.${frac}` : '');
}

function decimalsOf(value: Big): number {
  const text = value.toFixed();
  const dot = text.indexOf('.');
  return dot < 0 ? 0 : text.length - dot - 1;
}

export interface FormatOptions {
  /** Decimals always shown (padded with zeros). */
  minDp: number;
  /** Decimals at most (rounded half up beyond). Defaults to minDp: fixed decimals. */
  maxDp?: number;
  /** Prefix "+" on positive values (changes, P&L). */
  signed?: boolean;
  /** Round down beyond maxDp instead of half up (money available to spend). */
  roundDown?: boolean;
}

/**
 * Formats a decimal string with grouped thousands and between minDp and maxDp decimals.
 * Returns "—" for a missing or malformed value, so a bad field never shows as "NaN".
 */
function formatDecimal(
  value: string | null | undefined,
  { minDp, maxDp = minDp, signed = false, roundDown = false }: FormatOptions,
): string {
  const v = toBig(value);
  if (!v) return '—';
  const dp = Math.min(maxDp, Math.max(minDp, decimalsOf(v)));
  let fixed = v.toFixed(dp, roundDown ? Big.roundDown : Big.roundHalfUp);
  // Rounding can leave "-0.00": a loss too small to show is no loss.
  if (/^-0(?:\.0+)?$/.test(fixed)) fixed = fixed.slice(1);
  const out = group(fixed);
  return signed && !out.startsWith('-') && !/^0(?:\.0+)?$/.test(fixed) ? `+${out}` : out;
}

/** US dollars, 2 decimals: "10,000.00". */
export const formatUsd = (value: string | null | undefined, signed = false) =>
  formatDecimal(value, { minDp: 2, signed });
/**
 * Money the user can spend, 2 decimals rounded down: "9,768.54" for 9768.54855. Rounded up, it
 * would show a cent that is not there, and an order for the amount shown would be refused.
 */
export const formatAvailableUsd = (value: string | null | undefined) =>
  formatDecimal(value, { minDp: 2, roundDown: true });
/**
 * The live market price: every digit the server sent, padded to at least 2 decimals so a tick
 * ending in 0 does not shift the figure, never rounded. Pyth prices carry up to 8 decimals,
 * and the ticket's price sits next to Buy: a rounded one would be a price no order fills at.
 */
export const formatPrice = (value: string | null | undefined, signed = false) =>
  formatDecimal(value, { minDp: 2, maxDp: Infinity, signed });
/** A SOL size: 4 decimals, more (up to 9) when the size has them, so no holding is hidden. */
export const formatSize = (value: string | null | undefined) => formatDecimal(value, { minDp: 4, maxDp: 9 });
/**
 * An amount the server settled (an executed price, a fee, an average entry price) exactly as it
 * sent it: grouped, without trailing zeros, never rounded. Pyth prices carry up to 8 decimals
 * and the server rounds fees and averages at 18: rounded here, the page would show a price no
 * order filled at or a fee that was not charged.
 */
export function formatExact(value: string | null | undefined): string {
  const v = toBig(value);
  return v ? group(v.toFixed()) : '—';
}
