import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
// `node --import tsx`, not the `tsx` binary: the binary runs the program in a child process,
// so a SIGKILL (a crash, in the fault tests) would kill only the wrapper and orphan the server.
const TSX_LOADER = 'tsx';
const MAIN = `${ROOT}apps/server/src/main.ts`;

interface ReadyInfo {
  api: string | null;
  ws: string | null;
  roles: string[];
}

/**
 * One tradewire process started the way `npm start [-- roles]` starts it. Collects its log
 * lines, resolves `ready` on the "tradewire ready" line, and is stopped with a signal.
 */
export class TradewireProcess {
  readonly child: ChildProcess;
  readonly lines: string[] = [];
  readonly stderr: string[] = [];
  readonly ready: Promise<ReadyInfo>;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  constructor(roles: string[], env: Record<string, string>, { readyTimeoutMs = 60_000 } = {}) {
    this.child = spawn(process.execPath, ['--import', TSX_LOADER, MAIN, ...roles], {
      cwd: ROOT,
      env: { ...process.env, LOG_LEVEL: 'info', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.exited = once(this.child, 'exit').then(([code, signal]) => ({
      code: code as number | null,
      signal: signal as NodeJS.Signals | null,
    }));
    createInterface({ input: this.child.stderr! }).on('line', (line) => this.stderr.push(line));
    this.ready = new Promise<ReadyInfo>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`tradewire ${roles.join(' ')} not ready in ${readyTimeoutMs} ms:\n${this.tail()}`)),
        readyTimeoutMs,
      );
      createInterface({ input: this.child.stdout! }).on('line', (line) => {
        this.lines.push(line);
        if (line.includes('"tradewire ready"')) {
          clearTimeout(timer);
          const parsed = JSON.parse(line) as ReadyInfo;
          resolve({ api: parsed.api, ws: parsed.ws, roles: parsed.roles });
        }
      });
      void this.exited.then(({ code, signal }) => {
        clearTimeout(timer);
        reject(new Error(`tradewire ${roles.join(' ')} exited (${code ?? signal}) before ready:\n${this.tail()}`));
      });
    });
    this.ready.catch(() => {});
  }

  tail(n = 30): string {
    return [...this.lines.slice(-n), ...this.stderr.slice(-n)].join('\n');
  }

  /** Sends `signal` and waits for the exit. */
  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal);
    return this.exited;
  }
}
