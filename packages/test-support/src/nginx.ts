import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './free-port.ts';
import { waitForPort } from './wait-for-port.ts';

/** Debian's nginx package. */
const NGINX = '/usr/sbin/nginx';

export interface NginxOptions {
  /**
   * What an operator puts in `/etc/nginx/conf.d/` (upstreams, maps, server blocks): it is
   * included in the `http` block of a main configuration like Debian's, whose paths (pid,
   * logs, temp files) point into a private directory.
   */
  site: string;
  /**
   * Exact strings of `site` to replace (the upstream addresses of the services under test, for
   * instance). Each must occur in `site`, so a test cannot silently drift from the file it
   * reads.
   */
  replace?: Record<string, string>;
}

/**
 * A private nginx for one test: Debian's binary, run in the foreground as a child process
 * with a generated configuration in a temporary directory, stopped by its PID. Every `listen`
 * directive of the site is rewritten to a free loopback port (in order: `ports`; parameters
 * such as `ssl` kept), so a site written for ports 80 and 443 runs unchanged otherwise.
 */
export class NginxServer {
  /** The loopback ports the site's `listen` directives were given, in order. */
  readonly ports: number[];
  /** The directory holding the configuration, logs and temp files. */
  readonly prefix: string;
  readonly #child: ChildProcess;
  readonly #exited: Promise<unknown>;

  private constructor(child: ChildProcess, prefix: string, ports: number[]) {
    this.#child = child;
    this.prefix = prefix;
    this.ports = ports;
    this.#exited = once(child, 'exit');
  }

  /** `http://127.0.0.1:<first port>`. */
  get url(): string {
    return `http://127.0.0.1:${this.ports[0]}`;
  }

  get pid(): number | undefined {
    return this.#child.pid;
  }

  /** Starts nginx on `options.site` and resolves once it accepts connections. */
  static async start(options: NginxOptions): Promise<NginxServer> {
    let site = options.site;
    for (const [from, to] of Object.entries(options.replace ?? {})) {
      if (!site.includes(from)) throw new Error(`nginx site: ${JSON.stringify(from)} does not occur`);
      site = site.split(from).join(to);
    }
    const ports: number[] = [];
    for (const _ of site.matchAll(/^\s*listen\s+[^;]+;/gm)) ports.push(await freePort());
    if (ports.length === 0) throw new Error('nginx site: no listen directive');
    let next = 0;
    // The address is replaced, its parameters (`ssl`, ...) kept.
    site = site.replace(
      /^(\s*)listen\s+\S+?(\s[^;]*)?;/gm,
      (_, indent: string, params: string | undefined) => `${indent}listen 127.0.0.1:${ports[next++]}${params ?? ''};`,
    );

    const prefix = mkdtempSync(join(tmpdir(), 'tw-nginx-'));
    // Run as root, nginx's workers drop to an unprivileged user that must reach its temp files.
    chmodSync(prefix, 0o755);
    writeFileSync(join(prefix, 'site.conf'), site);
    writeFileSync(
      join(prefix, 'nginx.conf'),
      [
        'worker_processes 1;',
        `pid ${prefix}/nginx.pid;`,
        `error_log ${prefix}/error.log warn;`,
        'events { worker_connections 4096; }',
        'http {',
        `  access_log ${prefix}/access.log;`,
        ...['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((t) => `  ${t}_temp_path ${prefix}/${t}_temp;`),
        `  include ${prefix}/site.conf;`,
        '}',
        '',
      ].join('\n'),
    );
    const child = spawn(NGINX, ['-p', prefix, '-c', join(prefix, 'nginx.conf'), '-g', 'daemon off;'], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    const stderr: string[] = [];
    child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk.toString()));
    const server = new NginxServer(child, prefix, ports);
    try {
      const gone = () => child.exitCode !== null || child.signalCode !== null;
      for (const port of ports) await waitForPort(port, { timeoutMs: 10_000, what: 'nginx', gone });
    } catch (err) {
      const log = [stderr.join(''), server.errorLog()].join('\n').trim();
      await server.stop();
      throw new Error(`${(err as Error).message}\n${log}`, { cause: err });
    }
    return server;
  }

  /** nginx's error log so far (for a failing test's message). */
  errorLog(): string {
    try {
      return readFileSync(join(this.prefix, 'error.log'), 'utf8');
    } catch {
      return '';
    }
  }

  /** Stops nginx (SIGTERM to the master, which stops its workers), waits for it, removes its directory. */
  async stop(): Promise<void> {
    const child = this.#child;
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await this.#exited;
    rmSync(this.prefix, { recursive: true, force: true });
  }
}
