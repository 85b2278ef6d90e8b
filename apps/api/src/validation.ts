import { z } from 'zod';
import { CANDLE_INTERVALS } from '@repo/db';
import { ApiError } from './errors.ts';

/** Usernames: 3–32 characters of a-z, 0-9 and underscore. */
const USERNAME_PATTERN = /^[a-z0-9_]{3,32}$/;

/** Whether `name` could have been registered; any other name is wrong credentials at login. */
export const couldBeUsername = (name: string): boolean => USERNAME_PATTERN.test(name);
const PASSWORD_MIN = 8;
const PASSWORD_MAX = 128;

/** Counts characters as code points, so "é" or an emoji is one character, not two. */
const characters = (s: string) => [...s].length;

export const RegisterBody = z
  .object({
    username: z.string().regex(USERNAME_PATTERN, 'must be 3-32 characters of a-z, 0-9 and _'),
    password: z
      .string()
      .refine(
        (s) => characters(s) >= PASSWORD_MIN && characters(s) <= PASSWORD_MAX,
        `must be ${PASSWORD_MIN}-${PASSWORD_MAX} characters`,
      ),
  })
  .strict();

/**
 * Login takes any strings within bounds: a username or password that could never have been
 * registered is simply wrong credentials (401), without telling which rule it breaks.
 */
export const LoginBody = z
  .object({
    username: z.string().max(64),
    password: z.string().max(PASSWORD_MAX * 4),
  })
  .strict();

export const OrderBody = z
  .object({
    symbol: z.string().min(1, 'must not be empty').max(16, 'must be at most 16 characters'),
    side: z.enum(['buy', 'sell'], { errorMap: () => ({ message: 'must be "buy" or "sell"' }) }),
    size: z.string().max(64, 'must be at most 64 characters'),
  })
  .strict();

export const DEFAULT_PAGE_SIZE = 50;
const MAX_PAGE_SIZE = 100;

const positiveIntText = (max: number) =>
  z
    .string()
    .regex(/^[1-9]\d{0,15}$/, 'must be a positive integer')
    .transform(Number)
    .refine((n) => n <= max, `must be at most ${max}`);

export const OrdersQuery = z
  .object({
    limit: positiveIntText(MAX_PAGE_SIZE).optional(),
    before: positiveIntText(Number.MAX_SAFE_INTEGER).optional(),
  })
  .strict();

export const DEFAULT_CANDLES = 500;
const MAX_CANDLES = 1000;

export const CandlesQuery = z
  .object({
    symbol: z.string().max(16, 'must be at most 16 characters'),
    interval: z.enum(CANDLE_INTERVALS, { errorMap: () => ({ message: 'must be "1s", "1m" or "1h"' }) }),
    limit: positiveIntText(MAX_CANDLES).optional(),
    /** Milliseconds since the epoch: candles that opened before it. */
    before: z
      .string()
      .regex(/^(?:0|[1-9]\d{0,15})$/, 'must be a time in milliseconds since the epoch (a non-negative integer)')
      .transform(Number)
      .refine((n) => Number.isSafeInteger(n), 'must be a safe integer (at most 2^53 - 1)')
      .optional(),
  })
  .strict();

/** Parses `input` with `schema` or throws a 400 naming the first offending field. */
export function parseInput<S extends z.ZodTypeAny>(schema: S, input: unknown, what: string): z.output<S> {
  if (input === undefined || input === null) throw new ApiError('invalid_request', `${what} is required`);
  const parsed = schema.safeParse(input);
  if (parsed.success) return parsed.data as z.output<S>;
  const issue = parsed.error.issues[0]!;
  const path = issue.path.join('.');
  let message: string;
  if (issue.code === 'unrecognized_keys')
    message = `unknown field ${issue.keys.map((k) => JSON.stringify(k.slice(0, 32))).join(', ')}`;
  else if (issue.code === 'invalid_type' && issue.received === 'undefined') message = `${path} is required`;
  else if (issue.code === 'invalid_type' && issue.expected === 'object')
    message = `${path || what} must be a JSON object`;
  else if (issue.code === 'invalid_type' && issue.expected === 'string') message = `${path || what} must be a string`;
  else message = `${path || what} ${issue.message}`;
  throw new ApiError('invalid_request', message);
}
