/** The username is already registered (unique violation on `users.username`). */
export class UsernameTakenError extends Error {
  readonly code = 'username_taken';
  constructor() {
    super('username is already taken');
    this.name = 'UsernameTakenError';
  }
}

/** The user row does not exist (an order or session for a deleted or unknown user). */
export class UnknownUserError extends Error {
  readonly code = 'unknown_user';
  constructor(userId: number) {
    super(`unknown user ${userId}`);
    this.name = 'UnknownUserError';
  }
}

/** An `Idempotency-Key` already used by this user, within its lifetime, for a different order. */
export class IdempotencyKeyReusedError extends Error {
  readonly code = 'idempotency_key_reused';
  constructor() {
    super('idempotency key was already used for a different order');
    this.name = 'IdempotencyKeyReusedError';
  }
}

/**
 * The order's session is no longer active (revoked by a logout, or expired) as the order's own
 * statements see it; nothing was written.
 */
export class SessionNotActiveError extends Error {
  readonly code = 'session_not_active';
  constructor() {
    super('the session is revoked or expired');
    this.name = 'SessionNotActiveError';
  }
}

/**
 * A database operation failed. Carries the SQLSTATE and the server's message but never the
 * query parameters: drizzle's own error puts them (password and token hashes among them) in
 * its message, and that must not reach a log.
 */
export class DatabaseError extends Error {
  readonly code = 'database_error';
  /** SQLSTATE, e.g. "23505", when the server sent one. */
  readonly sqlState: string | undefined;

  constructor(message: string, sqlState: string | undefined) {
    super(message);
    this.name = 'DatabaseError';
    this.sqlState = sqlState;
  }
}

/** The SQLSTATE of `err` or of one of its causes. */
export function sqlStateOf(err: unknown): string | undefined {
  for (
    let e: unknown = err, depth = 0;
    e && typeof e === 'object' && depth < 5;
    e = (e as { cause?: unknown }).cause, depth++
  ) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code)) return code;
  }
  return undefined;
}

/** Rewrites a driver or drizzle error into a `DatabaseError` that is safe to log. */
export function toDatabaseError(err: unknown): Error {
  if (
    err instanceof UsernameTakenError ||
    err instanceof UnknownUserError ||
    err instanceof IdempotencyKeyReusedError ||
    err instanceof SessionNotActiveError ||
    err instanceof DatabaseError
  ) {
    return err;
  }
  const sqlState = sqlStateOf(err);
  // drizzle wraps the driver error as `cause`; the driver's message holds no parameters.
  const cause = err && typeof err === 'object' ? (err as { cause?: unknown }).cause : undefined;
  const source = cause instanceof Error ? cause : err instanceof Error ? err : undefined;
  let message = source?.message ?? 'database operation failed';
  if (message.startsWith('Failed query:')) message = 'database query failed';
  return new DatabaseError(message, sqlState);
}
