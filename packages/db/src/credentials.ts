import { createHash, randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto';

/**
 * Password hashes and session tokens. Nothing here stores or logs a secret: passwords are kept
 * as scrypt hashes with a per-user salt, tokens as their SHA-256.
 */

/** scrypt cost N (CPU/memory), 2^14: about 50 ms and 16 MiB per hash. Tests pass a cheaper one. */
export const DEFAULT_SCRYPT_COST = 16_384;
const BLOCK_SIZE = 8;
const PARALLELISM = 1;
const KEY_LENGTH = 32;
const SALT_BYTES = 16;
// Node refuses N·r·128 above maxmem (32 MiB by default); leave room for the largest cost we accept.
const MAX_COST = 1 << 17;

function scryptAsync(password: string, salt: Buffer, keyLength: number, options: ScryptOptions): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    scrypt(password, salt, keyLength, options, (err, key) => (err ? reject(err) : resolve(key)));
  });
}

function checkCost(cost: number): void {
  // N must be a power of two greater than 1.
  if (!Number.isInteger(cost) || cost < 2 || cost > MAX_COST || (cost & (cost - 1)) !== 0) {
    throw new RangeError(`scrypt cost must be a power of two between 2 and ${MAX_COST}, got ${cost}`);
  }
}

/**
 * Hashes `password` with scrypt and a fresh random salt. The result records its own
 * parameters (`scrypt$N$r$p$salt$hash`), so the cost can be raised later without breaking
 * existing hashes. Runs on libuv's thread pool, not the event loop.
 */
export async function hashPassword(password: string, options: { cost?: number } = {}): Promise<string> {
  const cost = options.cost ?? DEFAULT_SCRYPT_COST;
  checkCost(cost);
  const salt = randomBytes(SALT_BYTES);
  const key = await scryptAsync(password, salt, KEY_LENGTH, {
    N: cost,
    r: BLOCK_SIZE,
    p: PARALLELISM,
    maxmem: 256 * MAX_COST * BLOCK_SIZE,
  });
  return ['scrypt', cost, BLOCK_SIZE, PARALLELISM, salt.toString('base64url'), key.toString('base64url')].join('$');
}

/** True when `password` matches `stored`; the comparison is constant-time. */
export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const parts = stored.split('$');
  if (parts.length !== 6 || parts[0] !== 'scrypt') return false;
  const [, n, r, p, saltText, keyText] = parts as [string, string, string, string, string, string];
  const cost = Number(n);
  const blockSize = Number(r);
  const parallelism = Number(p);
  try {
    checkCost(cost);
  } catch {
    return false;
  }
  if (!Number.isInteger(blockSize) || blockSize < 1 || blockSize > 32) return false;
  if (!Number.isInteger(parallelism) || parallelism < 1 || parallelism > 16) return false;
  const expected = Buffer.from(keyText, 'base64url');
  if (expected.length !== KEY_LENGTH) return false;
  const actual = await scryptAsync(password, Buffer.from(saltText, 'base64url'), KEY_LENGTH, {
    N: cost,
    r: blockSize,
    p: parallelism,
    maxmem: 256 * MAX_COST * 32,
  });
  return timingSafeEqual(actual, expected);
}

let dummyHash: { cost: number; hash: Promise<string> } | undefined;

/**
 * Spends the time of one password check without a user to check against, so that a login for
 * an unknown username takes as long as one with a wrong password (no username probing by
 * timing).
 */
export async function burnPasswordCheck(password: string, options: { cost?: number } = {}): Promise<void> {
  const cost = options.cost ?? DEFAULT_SCRYPT_COST;
  if (!dummyHash || dummyHash.cost !== cost) {
    dummyHash = { cost, hash: hashPassword('tradewire-dummy-password', { cost }) };
  }
  await verifyPassword(password, await dummyHash.hash);
}

/** Bytes of randomness in a session token: 256 bits. */
const TOKEN_BYTES = 32;
/** A session token is 43 characters of base64url. */
export const SESSION_TOKEN_PATTERN = /^[A-Za-z0-9_-]{43}$/;

/** A new opaque bearer token. Only its hash (`hashToken`) is stored. */
export function newSessionToken(): string {
  return randomBytes(TOKEN_BYTES).toString('base64url');
}

/**
 * Hex SHA-256 of a token. A fast hash is right here (unlike passwords): the token has 256
 * bits of entropy, so there is nothing to brute-force.
 */
export function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

/** Compares two token hashes in constant time. */
export function tokenHashesEqual(a: string, b: string): boolean {
  const left = Buffer.from(a, 'utf8');
  const right = Buffer.from(b, 'utf8');
  return left.length === right.length && timingSafeEqual(left, right);
}
