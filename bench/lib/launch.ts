import { sleep } from './clock.ts';
import { spawnNodeTs, type PinnedProcess } from './processes.ts';

export interface LaunchedRole {
  proc: PinnedProcess;
  api: string | null;
  ws: string | null;
}

/**
 * Starts the real launcher (`apps/server/src/main.ts [roles]`) pinned to `core` and waits for
 * its "tradewire ready" line. No roles: the all-in-one process of `npm start`.
 */
export async function launchRoles(
  core: number,
  roles: string[],
  env: Record<string, string>,
  nodeFlags: string[] = [],
): Promise<LaunchedRole> {
  const proc = spawnNodeTs(core, 'apps/server/src/main.ts', roles, nodeFlags, {
    // Every benchmark client connects from 127.0.0.1: the gateway's per-address limits are
    // lifted for it, as they must be for any load test from one host.
    env: { LOG_LEVEL: 'info', HOST: '127.0.0.1', PORT: '0', WS_PORT: '0', WS_LIMIT_EXEMPT: '127.0.0.1', ...env },
    stdout: true,
  });
  const deadline = Date.now() + 90_000;
  for (;;) {
    const line = proc
      .stdout()
      .split('\n')
      .find((l) => l.includes('"tradewire ready"'));
    if (line) {
      const ready = JSON.parse(line) as { api: string | null; ws: string | null };
      return { proc, api: ready.api, ws: ready.ws };
    }
    if (proc.child.exitCode !== null || Date.now() > deadline) {
      await proc.stop();
      const name = roles.join(',') || 'all-in-one';
      throw new Error(`tradewire ${name} did not start:\n${proc.stdout().slice(-2000)}\n${proc.stderr().slice(-2000)}`);
    }
    await sleep(50);
  }
}
