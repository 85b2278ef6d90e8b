import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/**
 * Every process the benchmark started, so that each one is stopped by its PID however the run
 * ends (error, Ctrl-C, a crash of the runner itself).
 */
const started = new Set<ChildProcess>();

export interface PinnedProcess {
  readonly child: ChildProcess;
  readonly pid: number;
  /** Resolves with the exit code (or signal name) when the process is gone. */
  readonly exited: Promise<number | string>;
  /** Collected stderr (last 64 KiB), for error messages. */
  stderr(): string;
  /** Collected stdout (last 64 KiB), when started with `{ stdout: true }`. */
  stdout(): string;
  /** SIGTERM, then SIGKILL after `graceMs`. Resolves when the process is gone. */
  stop(graceMs?: number): Promise<void>;
}

/** Nice value of every process started from now on; null = inherit (see setNiceness). */
let niceness: number | null = null;

/**
 * Runs the benchmark's processes at nice `value` (e.g. -10): on a machine shared with other
 * work, the CPU scheduler then gives the server under test and the generator most of their
 * cores, so other processes stop setting the tail latencies. Every server gets the same.
 */
export function setNiceness(value: number | null): void {
  niceness = value;
  // With the kernel's autogroup scheduling (the default on desktop and many server kernels),
  // nice only ranks processes inside one session's group: other sessions' work still gets an
  // equal share of the CPUs. The group's own nice ranks the groups; the runner's session holds
  // every process the benchmark starts.
  if (value !== null && existsSync('/proc/self/autogroup')) {
    try {
      const before = /nice (-?\d+)/.exec(readFileSync('/proc/self/autogroup', 'utf8'))?.[1];
      writeFileSync('/proc/self/autogroup', String(value));
      // The group is the whole session (the shell that ran the benchmark): give it back its
      // nice when the run ends.
      if (before !== undefined) process.once('exit', () => writeFileSync('/proc/self/autogroup', before));
    } catch {
      // Not permitted (no CAP_SYS_NICE for a negative value): per-process nice still applies.
    }
  }
}

/**
 * Starts `command` pinned to CPU `core` (or a list such as "0,1") with `taskset` (which execs it, so the PID is the
 * command's own; so does `nice`) and an IPC channel on fd 3.
 */
export function spawnPinned(
  core: number | string,
  command: string,
  args: string[],
  { env = {}, stdout: keepStdout = false }: { env?: NodeJS.ProcessEnv; stdout?: boolean } = {},
): PinnedProcess {
  const pinned = ['taskset', '-c', String(core), command, ...args];
  const argv = niceness === null ? pinned : ['nice', '-n', String(niceness), ...pinned];
  const child = spawn(argv[0]!, argv.slice(1), {
    cwd: ROOT,
    env: { ...process.env, ...env },
    // BENCH_DEBUG also passes stdout through, where V8's --trace-gc* flags write.
    stdio: ['ignore', keepStdout ? 'pipe' : process.env.BENCH_DEBUG ? 'inherit' : 'ignore', 'pipe', 'ipc'],
  });
  if (child.pid === undefined) throw new Error(`could not start ${command}`);
  started.add(child);
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString('utf8')).slice(-65_536);
    // BENCH_DEBUG shows every child's diagnostics as they come.
    if (process.env.BENCH_DEBUG) process.stderr.write(chunk);
  });
  let stdout = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    stdout = (stdout + chunk.toString('utf8')).slice(-65_536);
    // Kept for the caller, and with BENCH_DEBUG shown too (V8's --trace-gc* write there).
    if (process.env.BENCH_DEBUG) process.stderr.write(chunk);
  });
  const exited = once(child, 'exit').then(([code, signal]) => {
    started.delete(child);
    return (code as number | null) ?? (signal as string);
  });
  return {
    child,
    pid: child.pid,
    exited,
    stderr: () => stderr,
    stdout: () => stdout,
    async stop(graceMs = 5000) {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** Starts a TypeScript entry with node + tsx's loader in this process (no tsx CLI wrapper process). */
export function spawnNodeTs(
  core: number | string,
  entry: string,
  args: string[],
  nodeFlags: string[] = [],
  options: { env?: NodeJS.ProcessEnv; stdout?: boolean } = {},
): PinnedProcess {
  return spawnPinned(core, process.execPath, ['--import', 'tsx', ...nodeFlags, entry, ...args], options);
}

/** Kills whatever is still running: SIGTERM to all, SIGKILL to survivors after `graceMs`. */
export async function stopAll(graceMs = 3000): Promise<void> {
  const children = [...started];
  for (const child of children) child.kill('SIGTERM');
  await Promise.race([
    Promise.all(
      children.map((child) =>
        child.exitCode !== null || child.signalCode !== null ? Promise.resolve() : once(child, 'exit'),
      ),
    ),
    new Promise((resolve) => setTimeout(resolve, graceMs)),
  ]);
  for (const child of started) child.kill('SIGKILL');
}

/** Last resort when the runner exits without cleaning up: SIGKILL by PID, synchronously. */
process.on('exit', () => {
  for (const child of started) {
    try {
      process.kill(child.pid!, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }
});

/** Waits for the first IPC message of `type` from `proc`; rejects if it exits or `timeoutMs` passes. */
export function nextMessage<T extends { type: string }>(
  proc: PinnedProcess,
  type: string,
  timeoutMs: number,
  matches: (message: T) => boolean = () => true,
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onMessage = (raw: unknown) => {
      const message = raw as { type: string; message?: string };
      if (message.type === type && matches(message as unknown as T)) {
        cleanup();
        resolve(message as T);
      } else if (message.type === 'error') {
        cleanup();
        reject(new Error(message.message ?? 'error'));
      }
    };
    const onExit = (code: number | null, signal: string | null) => {
      cleanup();
      reject(
        new Error(`process ${proc.pid} exited (${code ?? signal}) before '${type}':\n${proc.stderr().slice(-4000)}`),
      );
    };
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`no '${type}' from process ${proc.pid} within ${timeoutMs} ms:\n${proc.stderr().slice(-4000)}`));
    }, timeoutMs);
    const cleanup = () => {
      clearTimeout(timer);
      proc.child.off('message', onMessage);
      proc.child.off('exit', onExit);
    };
    proc.child.on('message', onMessage);
    proc.child.on('exit', onExit);
  });
}
