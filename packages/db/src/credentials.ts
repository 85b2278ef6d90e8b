import { createHash, randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto';
import argon2 from 'argon2';

/**
 * Password hashes and session tokens. Nothing here stores or logs a secret: passwords are kept
 * as argon2id hashes with a per-user salt, tokens as their SHA-256.
 */

/** argon2id cost: memory in KiB, passes over it, lanes. */
export interface PasswordHashParams {
  memoryKiB: number;
  passes: number;
  parallelism: number;
}

/**
 * OWASP's argon2id parameters (19 MiB, 2 passes, 1 lane): about 30 ms per hash here. scrypt
 * at OWASP's N = 2^17 took about 470 ms on the same machine, past the 300 ms login budget,
 * and needs 128 MiB per hash in flight.
 */
export const DEFAULT_PASSWORD_HASH: Readonly<PasswordHashParams> = Object.freeze({
  memoryKiB: 19_456,
  passes: 2,
  parallelism: 1,
});

const SALT_BYTES = 16;
const KEY_LENGTH = 32;

function checkParams(params: PasswordHashParams): void {
  const { memoryKiB, passes, parallelism } = params;
  if (!Number.isInteger(memoryKiB) || memoryKiB < 1024 || memoryKiB > 1_048_576) {
    throw new RangeError(`argon2 memoryKiB must be an integer from 1024 to 1048576, got ${memoryKiB}`);
  }
  if (!Number.isInteger(passes) || passes < 1 || passes > 16) {
    throw new RangeError(`argon2 passes must be an integer from 1 to 16, got ${passes}`);
  }
  if (!Number.isInteger(parallelism) || parallelism < 1 || parallelism > 16) {
    throw new RangeError(`argon2 parallelism must be an integer from 1 to 16, got ${parallelism}`);
  }
}

/**
 * Hashes `password` with argon2id and a fresh random salt, as a PHC string
 * (`$argon2id$v=19$m=…,t=…,p=…$salt$hash`) that records its own parameters, so they can be
 * raised later without breaking existing hashes. Runs on libuv's thread pool.
 */
export async function hashPassword(
  password: string,
  params: PasswordHashParams = DEFAULT_PASSWORD_HASH,
): Promise<string> {
  checkParams(params);
  return argon2.hash(password, {
    type: argon2.argon2id,
    memoryCost: params.memoryKiB,
    timeCost: params.passes,
    parallelism: params.parallelism,
    hashLength: KEY_LENGTH,
    salt: randomBytes(SALT_BYTES),
  });
}

/**
 * True when `password` matches `stored`: an argon2id hash, or a legacy scrypt one
 * (`scrypt$N$r$p$salt$hash`, written before argon2id) that keeps working until the next
 * successful login rehashes it. Comparisons are constant-time; a malformed hash never matches.
 */
export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  if (stored.startsWith('$argon2id$')) {
    try {
      return await argon2.verify(stored, password);
    } catch {
      return false;
    }
  }
  if (stored.startsWith('scrypt$')) return verifyLegacyScrypt(password, stored);
  return false;
}

/**
 * True when `stored` is not an argon2id hash with exactly `params`: a legacy scrypt hash, or
 * argon2id at other costs. The login that proves the password replaces it.
 */
export function needsRehash(stored: string, params: PasswordHashParams = DEFAULT_PASSWORD_HASH): boolean {
  const match = /^\$argon2id\$v=19\$([a-z0-9=,]+)\$/.exec(stored);
  if (!match) return true;
  // The parameters' order is the library's choice (`m=…,p=…,t=…` today).
  const found = new Map(match[1]!.split(',').map((pair) => pair.split('=') as [string, string]));
  return (
    found.get('m') !== String(params.memoryKiB) ||
    found.get('t') !== String(params.passes) ||
    found.get('p') !== String(params.parallelism)
  );
}

let dummyHash: { key: string; hash: Promise<string> } | undefined;

/**
 * Spends the time of one password check without a user to check against, so that a login for
 * an unknown username takes as long as one with a wrong password (no username probing by
 * timing).
 */
export async function burnPasswordCheck(
  password: string,
  params: PasswordHashParams = DEFAULT_PASSWORD_HASH,
): Promise<void> {
  const key = `${params.memoryKiB}/${params.passes}/${params.parallelism}`;
  if (!dummyHash || dummyHash.key !== key) {
    dummyHash = { key, hash: hashPassword('tradewire-dummy-password', params) };
  }
  await verifyPassword(password, await dummyHash.hash);
}

/** The largest legacy scrypt cost accepted; Node refuses N·r·128 bytes above `maxmem`. */
const LEGACY_SCRYPT_MAX_COST = 1 << 17;

function scryptAsync(password: string, salt: Buffer, keyLength: number, options: ScryptOptions): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    scrypt(password, salt, keyLength, options, (err, key) => (err ? reject(err) : resolve(key)));
  });
}

async function verifyLegacyScrypt(password: string, stored: string): Promise<boolean> {
  const parts = stored.split('$');
  if (parts.length !== 6) return false;
  const [, n, r, p, saltText, keyText] = parts as [string, string, string, string, string, string];
  const cost = Number(n);
  const blockSize = Number(r);
  const parallelism = Number(p);
  if (!Number.isInteger(cost) || cost < 2 || cost > LEGACY_SCRYPT_MAX_COST || (cost & (cost - 1)) !== 0) return false;
  if (!Number.isInteger(blockSize) || blockSize < 1 || blockSize > 32) return false;
  if (!Number.isInteger(parallelism) || parallelism < 1 || parallelism > 16) return false;
  const expected = Buffer.from(keyText, 'base64url');
  if (expected.length !== KEY_LENGTH) return false;
  const actual = await scryptAsync(password, Buffer.from(saltText, 'base64url'), KEY_LENGTH, {
    N: cost,
    r: blockSize,
    p: parallelism,
    // 128·N·r bytes, plus headroom: Node's 32 MiB default refuses N = 2^17 at r = 8.
    maxmem: 256 * cost * blockSize,
  });
  return timingSafeEqual(actual, expected);
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
