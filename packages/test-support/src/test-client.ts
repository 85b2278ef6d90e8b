import { WebSocket, type ClientOptions } from 'ws';
import type { ServerMessage } from '@repo/protocol';

type Waiter = { match: (m: ServerMessage) => boolean; resolve: (m: ServerMessage) => void };

/**
 * A raw `ws` client for gateway tests: records every text frame it gets, and lets a test await
 * a message (with a timeout, never a sleep), a reply to a request, or the close.
 */
export class TestClient {
  readonly ws: WebSocket;
  /** Every message received, in order. */
  readonly received: ServerMessage[] = [];
  /** Binary frames received (the gateway must never send any). */
  binaryFrames = 0;
  readonly closed: Promise<{ code: number; reason: string }>;
  #cursor = 0;
  #waiters: Waiter[] = [];
  #nextId = 0;

  private constructor(ws: WebSocket) {
    this.ws = ws;
    ws.on('message', (data, isBinary) => {
      if (isBinary) {
        this.binaryFrames += 1;
        return;
      }
      const message = JSON.parse((data as Buffer).toString()) as ServerMessage;
      this.received.push(message);
      this.#waiters = this.#waiters.filter((waiter) => {
        if (!waiter.match(message)) return true;
        waiter.resolve(message);
        return false;
      });
    });
    this.closed = new Promise((resolve) => {
      ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() }));
    });
    ws.on('error', () => {});
  }

  /** Opens a socket to `url` and waits until it is open. */
  static async connect(url: string, options: ClientOptions = {}): Promise<TestClient> {
    const ws = new WebSocket(url, options);
    const client = new TestClient(ws);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
      ws.once('unexpected-response', (_req, res) => reject(new Error(`unexpected HTTP ${res.statusCode}`)));
    });
    return client;
  }

  /** Tries to open a socket that the gateway should refuse; resolves with the HTTP status it answered. */
  static async refusedStatus(url: string, options: ClientOptions = {}): Promise<number> {
    const ws = new WebSocket(url, options);
    ws.on('error', () => {});
    return new Promise<number>((resolve, reject) => {
      ws.once('open', () => {
        ws.terminate();
        reject(new Error('upgrade was accepted'));
      });
      ws.once('unexpected-response', (req, res) => {
        resolve(res.statusCode ?? 0);
        res.resume();
        req.destroy();
      });
    });
  }

  send(message: object | string): void {
    this.ws.send(typeof message === 'string' ? message : JSON.stringify(message));
  }

  /** Sends `message` with a fresh `id` and resolves with the reply that echoes it. */
  async request(message: Record<string, unknown>, timeoutMs = 3000): Promise<ServerMessage> {
    const id = `r${(this.#nextId += 1)}`;
    const reply = this.waitFor((m) => 'id' in m && m.id === id, timeoutMs, `reply to ${String(message.type)}`);
    this.send({ ...message, id });
    return reply;
  }

  /** The first message received so far, or from now on, that matches (narrowed by a type guard). */
  waitFor<T extends ServerMessage>(match: (m: ServerMessage) => m is T, timeoutMs?: number, what?: string): Promise<T>;
  waitFor(match: (m: ServerMessage) => boolean, timeoutMs?: number, what?: string): Promise<ServerMessage>;
  waitFor(match: (m: ServerMessage) => boolean, timeoutMs = 3000, what = 'message'): Promise<ServerMessage> {
    const found = this.received.find(match);
    if (found) return Promise.resolve(found);
    return this.#wait(match, timeoutMs, what);
  }

  /** The next message not yet taken by `next()`, in arrival order. */
  async next(timeoutMs = 3000): Promise<ServerMessage> {
    if (this.#cursor < this.received.length) return this.received[this.#cursor++]!;
    const message = await this.#wait(() => true, timeoutMs, 'next message');
    this.#cursor += 1;
    return message;
  }

  /** Skips everything received so far for `next()`. */
  skipReceived(): void {
    this.#cursor = this.received.length;
  }

  /**
   * Resolves once every frame the gateway wrote before now has arrived: a ping request's pong
   * comes after them on the same TCP stream.
   */
  async barrier(timeoutMs = 3000): Promise<void> {
    await this.request({ type: 'ping' }, timeoutMs);
  }

  /** Messages of one type received so far. */
  ofType<T extends ServerMessage['type']>(type: T): Extract<ServerMessage, { type: T }>[] {
    return this.received.filter((m) => m.type === type) as Extract<ServerMessage, { type: T }>[];
  }

  async close(): Promise<void> {
    if (this.ws.readyState === WebSocket.CLOSED) return;
    if (this.ws.readyState !== WebSocket.CLOSING) this.ws.close();
    const timer = setTimeout(() => this.ws.terminate(), 2000);
    await this.closed;
    clearTimeout(timer);
  }

  #wait(match: (m: ServerMessage) => boolean, timeoutMs: number, what: string): Promise<ServerMessage> {
    return new Promise<ServerMessage>((resolve, reject) => {
      const waiter: Waiter = {
        match,
        resolve: (m) => {
          clearTimeout(timer);
          resolve(m);
        },
      };
      const timer = setTimeout(() => {
        this.#waiters = this.#waiters.filter((w) => w !== waiter);
        reject(
          new Error(
            `timed out after ${timeoutMs} ms waiting for ${what}; got ${JSON.stringify(this.received.slice(-5))}`,
          ),
        );
      }, timeoutMs);
      this.#waiters.push(waiter);
    });
  }
}
