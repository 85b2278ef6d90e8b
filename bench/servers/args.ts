import { parseArgs } from 'node:util';

/** The command line every bench server takes (the runner passes the same to each). */
export function serverArgs(): { redisUrl: string; databaseUrl?: string; usersFile?: string; partitions?: number } {
  const { values } = parseArgs({
    options: {
      'redis-url': { type: 'string' },
      'database-url': { type: 'string' },
      users: { type: 'string' },
      // tradewire only: the partitioned channel layout with this many user partitions.
      partitions: { type: 'string' },
    },
    strict: true,
  });
  const redisUrl = values['redis-url'];
  if (!redisUrl) throw new Error('--redis-url is required');
  const partitions = values.partitions === undefined ? undefined : Number(values.partitions);
  return { redisUrl, databaseUrl: values['database-url'], usersFile: values.users, partitions };
}
