import { readFileSync } from 'node:fs';

export interface BenchSession {
  userId: number;
  sessionId: string;
  expiresAt?: Date;
}

export interface SessionVerifier {
  verify(token: string): Promise<BenchSession | null>;
}

/** One seeded user, as `bench/seed-users.ts` writes them. */
export interface SeededUser {
  userId: number;
  token: string;
}

/** The first `count` users of a users file (all when `count` is omitted); throws if it has fewer. */
export function readUsersFile(file: string, count?: number): SeededUser[] {
  const users = JSON.parse(readFileSync(file, 'utf8')) as SeededUser[];
  if (count === undefined) return users;
  if (users.length < count) throw new Error(`${file} has ${users.length} users, ${count} needed`);
  return users.slice(0, count);
}

/**
 * The session verifier every bench server uses, so that all three authenticate the same way:
 * the real one (`@repo/db`'s `createSessionStore` over PostgreSQL) when `databaseUrl` is given,
 * else a table read from a users file (`[{userId, token}]`). Auth only runs while clients
 * connect, never inside a measured window, so its cost does not enter any figure.
 */
export async function openSessionVerifier(options: {
  databaseUrl?: string | undefined;
  usersFile?: string | undefined;
}): Promise<{ verifier: SessionVerifier; close(): Promise<void> }> {
  if (options.databaseUrl) {
    const { openDatabase, createSessionStore } = await import('@repo/db');
    const db = await openDatabase({ url: options.databaseUrl, poolSize: 4 });
    return { verifier: createSessionStore(db), close: () => db.close() };
  }
  const byToken = new Map<string, BenchSession>();
  if (options.usersFile) {
    for (const { userId, token } of readUsersFile(options.usersFile))
      byToken.set(token, { userId, sessionId: `bench-${userId}` });
  }
  return {
    verifier: { verify: (token) => Promise.resolve(byToken.get(token) ?? null) },
    close: async () => {},
  };
}
