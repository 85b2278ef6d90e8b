import type { EndToEndResult } from './results.ts';

export interface EndToEndOptions {
  rate: number;
  users: number;
  warmupS: number;
  measureS: number;
  redisUrl: string;
  databaseUrl: string;
  usersFile: string;
  core: number;
  generatorCore: number;
}

export async function runEndToEnd(_options: EndToEndOptions): Promise<EndToEndResult> {
  throw new Error('not implemented yet');
}
