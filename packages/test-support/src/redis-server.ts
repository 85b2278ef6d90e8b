import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { promisify } from 'node:util';
import { freePort } from './free-port.ts';
import { waitForPort } from './wait-for-port.ts';

/**
 * A private redis-server for one test file: started on a free port, stopped by PID. Tests
 * that kill Redis use this, never the machine's shared instance.
 */
export class RedisServer {
  readonly port: number;
  #child: ChildProcess | undefined;

  private constructor(port: number) {
    this.port = port;
  }

  static async start(port?: number): Promise<RedisServer> {
    for (let attempt = 1; ; attempt++) {
      const server = new RedisServer(port ?? (await freePort()));
      try {
        await server.#spawn();
        return server;
      } catch (err) {
        // Another process took the free port before redis-server bound it: another port.
        if (port !== undefined || attempt >= 3 || !(err instanceof PortTakenError)) throw err;
      }
    }
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  get pid(): number | undefined {
    return this.#child?.pid;
  }

  async #spawn(): Promise<void> {
    const child = spawn(
      'redis-server',
      ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--loglevel', 'warning'],
      { stdio: 'ignore' },
    );
    this.#child = child;
    const exited = () => child.exitCode !== null || child.signalCode !== null;
    try {
      await waitForPort(this.port, { timeoutMs: 5000, what: 'redis-server', gone: exited });
    } catch (err) {
      if (exited()) throw new PortTakenError(this.port);
      throw err;
    }
    // What answered may be another process that held the port first, while this one exits.
    const pid = await serverPid(this.port).catch(() => undefined);
    if (pid !== child.pid) {
      await this.kill();
      throw new PortTakenError(this.port);
    }
  }

  /** Kills the server with SIGKILL, as a crash would, and waits for it to be gone. */
  async kill(): Promise<void> {
    const child = this.#child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = once(child, 'exit');
    // A paused (SIGSTOPped) server dies at SIGKILL too.
    child.kill('SIGKILL');
    await exited;
    this.#child = undefined;
  }

  /**
   * Stops the server with SIGSTOP: its kernel still accepts connections and acknowledges what
   * clients send, but nothing is answered, as with a hung Redis or a host gone without a reset.
   */
  pause(): void {
    this.#signal('SIGSTOP');
  }

  /**
   * Lets a paused server run again (SIGCONT); it then handles what it was sent meanwhile. Does
   * nothing when it is not running, so a test's cleanup may call it whatever happened before.
   */
  resume(): void {
    if (this.#running()) this.#child!.kill('SIGCONT');
  }

  #signal(signal: NodeJS.Signals): void {
    if (!this.#running()) throw new Error('redis-server is not running');
    this.#child!.kill(signal);
  }

  #running(): boolean {
    const child = this.#child;
    return child !== undefined && child.exitCode === null && child.signalCode === null;
  }

  /** Starts the server again on the same port, empty (nothing is persisted). */
  async restart(): Promise<void> {
    await this.kill();
    await this.#spawn();
  }

  async stop(): Promise<void> {
    await this.kill();
  }
}

class PortTakenError extends Error {
  constructor(port: number) {
    super(`127.0.0.1:${port} is held by another process; redis-server could not listen there`);
  }
}

/** The `process_id` the Redis at 127.0.0.1:`port` reports. */
async function serverPid(port: number): Promise<number | undefined> {
  const { stdout } = await promisify(execFile)('redis-cli', ['-h', '127.0.0.1', '-p', String(port), 'INFO', 'server'], {
    timeout: 5000,
  });
  const match = /process_id:(\d+)/.exec(stdout);
  return match ? Number(match[1]) : undefined;
}
