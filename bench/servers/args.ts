import { parseArgs } from 'node:util';

/** The command line every bench server takes (the runner passes the same to each). */
export function serverArgs(): { redisUrl: string; databaseUrl?: string; usersFile?: string } {
  const { values } = parseArgs({
    options: {
      'redis-url': { type: 'string' },
      'database-url': { type: 'string' },
      users: { type: 'string' },
    },
    strict: true,
  });
  const redisUrl = values['redis-url'];
  if (!redisUrl) throw new Error('--redis-url is required');
  return { redisUrl, databaseUrl: values['database-url'], usersFile: values.users };
}
