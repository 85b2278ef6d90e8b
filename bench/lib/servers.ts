import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { TargetServer } from '../load/fleet.ts';
import type { ControlReply, ServerMemory, ServerWindowStats } from '../servers/control.ts';
import { ROOT, nextMessage, spawnNodeTs, type PinnedProcess } from './processes.ts';

export type ServerName = 'tradewire' | 'naive' | 'socketio';

export interface ServerDef {
  name: ServerName;
  label: string;
  entry: string;
  protocol: TargetServer['protocol'];
}

export const SERVERS: Record<ServerName, ServerDef> = {
  tradewire: { name: 'tradewire', label: 'tradewire (apps/ws)', entry: 'bench/servers/tradewire.ts', protocol: 'json' },
  naive: { name: 'naive', label: 'design broadcast (naive)', entry: 'bench/servers/naive.ts', protocol: 'json' },
  socketio: {
    name: 'socketio',
    label: 'Socket.IO 4 + redis-adapter',
    entry: 'bench/servers/socketio.ts',
    protocol: 'socketio',
  },
};

/** True when the gateway under test exists in this checkout. */
export function tradewireAvailable(): boolean {
  return existsSync(join(ROOT, 'apps/ws/src/index.ts'));
}

export interface ServerOptions {
  core: number;
  redisUrl: string;
  usersFile?: string;
  databaseUrl?: string;
  /** More arguments for the server (e.g. tradewire's `--partitions`). */
  args?: string[];
}

export interface RunningServer {
  def: ServerDef;
  proc: PinnedProcess;
  port: number;
  target: TargetServer;
  /** Memory after a full GC, as the server itself sees it, plus RSS. */
  memory(): Promise<ServerMemory>;
  /** A measured window opens: the server starts its loop/GC watch (and the profiler). */
  windowStart(profile: boolean): void;
  /** The window closes: its stats (and the `.cpuprofile` written to `profileFile`). */
  windowEnd(profileFile?: string): Promise<ServerWindowStats>;
  stop(): Promise<void>;
}

/** Starts one bench server pinned to `core` and waits until it listens. */
export async function startServer(def: ServerDef, options: ServerOptions): Promise<RunningServer> {
  const args = ['--redis-url', options.redisUrl];
  if (options.usersFile) args.push('--users', options.usersFile);
  if (options.databaseUrl) args.push('--database-url', options.databaseUrl);
  if (options.args) args.push(...options.args);
  // For diagnosis only (never set by `npm run bench`): BENCH_SERVER_NODE_FLAGS='--heap-prof'.
  const extraFlags = process.env.BENCH_SERVER_NODE_FLAGS?.split(' ').filter(Boolean) ?? [];
  const proc = spawnNodeTs(options.core, def.entry, args, ['--expose-gc', ...extraFlags]);
  let ready: Extract<ControlReply, { type: 'ready' }>;
  try {
    ready = await nextMessage(proc, 'ready', 60_000);
  } catch (err) {
    await proc.stop();
    throw err;
  }
  let windowId = 0;
  return {
    def,
    proc,
    port: ready.port,
    target: { protocol: def.protocol, host: '127.0.0.1', port: ready.port, path: '/', origin: 'http://127.0.0.1' },
    async memory() {
      const reply = nextMessage<Extract<ControlReply, { type: 'memory' }>>(proc, 'memory', 30_000);
      proc.child.send({ cmd: 'memory' });
      const { type: _type, ...memory } = await reply;
      return memory;
    },
    windowStart(profile) {
      proc.child.send({ cmd: 'window-start', profile });
    },
    async windowEnd(profileFile) {
      const id = (windowId += 1);
      const reply = nextMessage<Extract<ControlReply, { type: 'window' }>>(proc, 'window', 120_000, (m) => m.id === id);
      proc.child.send(profileFile ? { cmd: 'window-end', id, profileFile } : { cmd: 'window-end', id });
      const { type: _type, id: _id, ...stats } = await reply;
      return stats;
    },
    stop: () => proc.stop(),
  };
}
