import { once } from 'node:events';
import { createConnection, createServer, type Server, type Socket } from 'node:net';

/**
 * A TCP proxy on a free loopback port in front of one target (a private redis-server, a
 * database), that a test can cut and restore: the network failing between one process and
 * the target, while everything else still reaches it.
 */
export class TcpProxy {
  readonly port: number;
  readonly #server: Server;
  readonly #pairs = new Set<Socket>();
  #cut = false;
  /** Connections passed through since the start (refused ones while cut are not counted). */
  connections = 0;

  private constructor(server: Server, port: number) {
    this.#server = server;
    this.port = port;
  }

  /** Starts a proxy to `target` (host defaults to 127.0.0.1). */
  static async start(target: { port: number; host?: string }): Promise<TcpProxy> {
    const server = createServer();
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const address = server.address();
    if (address === null || typeof address !== 'object') throw new Error('tcp proxy: no port');
    const proxy = new TcpProxy(server, address.port);
    server.on('connection', (client) => proxy.#accept(client, target));
    return proxy;
  }

  /** Closes every connection through the proxy and drops new ones at once, until `restore()`. */
  cut(): void {
    this.#cut = true;
    for (const socket of this.#pairs) socket.destroy();
    this.#pairs.clear();
  }

  /** Lets connections through again (open ones stay closed: the client reconnects). */
  restore(): void {
    this.#cut = false;
  }

  async stop(): Promise<void> {
    this.cut();
    const closed = once(this.#server, 'close');
    this.#server.close();
    await closed;
  }

  #accept(client: Socket, target: { port: number; host?: string }): void {
    if (this.#cut) {
      client.destroy();
      return;
    }
    this.connections += 1;
    const upstream = createConnection({ port: target.port, host: target.host ?? '127.0.0.1' });
    for (const [a, b] of [
      [client, upstream],
      [upstream, client],
    ] as const) {
      this.#pairs.add(a);
      a.on('error', () => b.destroy());
      a.on('close', () => {
        this.#pairs.delete(a);
        b.destroy();
      });
      a.pipe(b);
    }
  }
}
