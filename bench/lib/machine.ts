import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cpus, loadavg, release, totalmem } from 'node:os';
import { join } from 'node:path';
import { ROOT } from './processes.ts';

export interface MachineInfo {
  cpu: string;
  cores: number;
  memoryGiB: number;
  kernel: string;
  node: string;
  redisServer: string;
  packages: Record<string, string>;
  commit: string;
  /** 1-minute load average at the start and end of the run: how shared the machine was. */
  loadAtStart: number;
  loadAtEnd?: number;
}

const PACKAGES = [
  'ws',
  'socket.io',
  'socket.io-client',
  '@socket.io/redis-adapter',
  '@socket.io/redis-emitter',
  'redis',
  'zod',
  'prom-client',
];

function packageVersion(name: string): string {
  try {
    return (JSON.parse(readFileSync(join(ROOT, 'node_modules', name, 'package.json'), 'utf8')) as { version: string })
      .version;
  } catch {
    return 'missing';
  }
}

function run(command: string, args: string[]): string {
  try {
    return execFileSync(command, args, { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return 'unknown';
  }
}

export function machineInfo(): MachineInfo {
  const dirty = run('git', ['status', '--porcelain', '--', 'apps/ws', 'packages', 'bench']) !== '';
  return {
    cpu: cpus()[0]?.model ?? 'unknown',
    cores: cpus().length,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    kernel: release(),
    node: process.version,
    redisServer: /v=(\S+)/.exec(run('redis-server', ['--version']))?.[1] ?? 'unknown',
    packages: Object.fromEntries(PACKAGES.map((name) => [name, packageVersion(name)])),
    commit: `${run('git', ['rev-parse', '--short', 'HEAD'])}${dirty ? ' (with uncommitted changes)' : ''}`,
    loadAtStart: loadavg()[0] ?? 0,
  };
}

/** The soft limit of open files for processes this one starts (`ulimit -n`). */
export function openFileLimit(): number {
  const value = run('sh', ['-c', 'ulimit -n']);
  return value === 'unlimited' ? Number.POSITIVE_INFINITY : Number(value);
}
