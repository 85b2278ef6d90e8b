import type { FastifyInstance } from 'fastify';
import {
  UsernameTakenError,
  burnPasswordCheck,
  hashPassword,
  hashToken,
  needsRehash,
  newSessionToken,
  verifyPassword,
} from '@repo/db';
import { redisKeys } from '@repo/redis';
import type { ApiContext } from '../context.ts';
import { ApiError } from '../errors.ts';
import { couldBeUsername, LoginBody, RegisterBody, parseInput } from '../validation.ts';

/** POST /auth/register, /auth/login, /auth/logout. */
export function registerAuthRoutes(app: FastifyInstance, ctx: ApiContext): void {
  const { db, settings } = ctx;
  const params = settings.passwordHash;

  /** A new session for `userId`: the token goes to the client, only its hash is stored. */
  async function openSession(userId: number) {
    const token = newSessionToken();
    const expiresAt = new Date(ctx.now().getTime() + settings.sessionTtlMs);
    await db.sessions.create({ userId, tokenHash: hashToken(token), expiresAt });
    return { userId, token, expiresAt: expiresAt.toISOString() };
  }

  /**
   * A new user's id can be one an earlier database gave out (the database reset, Redis kept): a
   * portfolio stored under it is that earlier user's, which gateways would send as this user's
   * snapshot, and which the stored-version rule would keep over this user's first ones. Dropped
   * before the user has a token to subscribe with. With Redis down it stays (logged): the
   * account is made all the same.
   */
  async function forgetStoredPortfolio(userId: number): Promise<void> {
    try {
      await ctx.broker.deleteLatest(redisKeys.portfolio(userId));
    } catch (err) {
      ctx.logger.warn({ err: (err as Error).message, userId }, 'could not clear a stored portfolio of a new user id');
    }
  }

  app.post('/auth/register', async (request, reply) => {
    const body = parseInput(RegisterBody, request.body, 'body');
    await ctx.limits.beginRegister(request.ip);
    const passwordHash = await ctx.passwordHashes.run(() => hashPassword(body.password, params));
    let userId: number;
    try {
      ({ userId } = await db.users.create({
        username: body.username,
        passwordHash,
        balances: [{ asset: settings.quoteAsset, available: settings.startingBalanceUsd }],
        positionAssets: [...settings.symbols],
      }));
    } catch (err) {
      if (err instanceof UsernameTakenError) throw new ApiError('username_taken', 'username is already taken');
      throw err;
    }
    await forgetStoredPortfolio(userId);
    return reply.code(201).send(await openSession(userId));
  });

  app.post('/auth/login', async (request, reply) => {
    const body = parseInput(LoginBody, request.body, 'body');
    await ctx.limits.beginLogin(request.ip, body.username);
    // A name that cannot exist is not looked up: some (a NUL in it) PostgreSQL refuses as text.
    const user = couldBeUsername(body.username) ? await db.users.findCredentials(body.username) : null;
    // An unknown username costs the same hashing time as a wrong password, so response time
    // does not tell which usernames exist.
    let ok: boolean;
    try {
      ok = await ctx.passwordHashes.run(async () =>
        user
          ? await verifyPassword(body.password, user.passwordHash)
          : (await burnPasswordCheck(body.password, params), false),
      );
    } catch (err) {
      // Refused for want of a hashing slot: no password was checked, so no attempt is spent.
      if (err instanceof ApiError && err.code === 'rate_limited') {
        await ctx.limits.loginNotChecked(request.ip, body.username);
      }
      throw err;
    }
    if (!user || !ok) {
      throw new ApiError('invalid_credentials', 'wrong username or password');
    }
    await ctx.limits.loginSucceeded(request.ip, body.username);
    if (needsRehash(user.passwordHash, params)) {
      // A legacy scrypt hash or an older cost: the password is at hand only now. Compare-and-
      // set, so a password changed meanwhile is never overwritten with the old one.
      // A failure only postpones the rehash to the next login; this one has succeeded.
      try {
        const rehashed = await ctx.passwordHashes.run(() => hashPassword(body.password, params));
        await db.users.replacePasswordHash(user.userId, user.passwordHash, rehashed);
      } catch (err) {
        ctx.logger.warn({ err: (err as Error).message, userId: user.userId }, 'password rehash failed');
      }
    }
    return reply.code(200).send(await openSession(user.userId));
  });

  app.post('/auth/logout', { onRequest: ctx.auth.hook }, async (request, reply) => {
    const { sessionId } = ctx.auth.sessionOf(request);
    // Revoked in the database first: REST refuses the token from now on. The revocation event
    // `{"sessionId"}` for the gateways was recorded in the same transaction; the relay
    // publishes it now and retries it through a broker outage, so logout never fails or
    // waits because the broker is down.
    await db.sessions.revoke(sessionId, ctx.now());
    // Other API processes find out at the token's next order (its statements refuse it).
    ctx.auth.forget(request);
    ctx.relay.kick();
    return reply.code(204).send();
  });
}
