import WebSocket from 'ws';

type Message = Record<string, unknown> & { type: string };

/**
 * A raw WebSocket client for end-to-end tests: keeps every message it received and lets a test
 * await the first one (old or new) that matches a predicate.
 */
export class WsInbox {
  readonly socket: WebSocket;
  readonly messages: Message[] = [];
  #waiters: { match: (m: Message) => boolean; resolve: (m: Message) => void }[] = [];
  #nextId = 1;

  private constructor(socket: WebSocket) {
    this.socket = socket;
    socket.on('message', (data) => {
      const message = JSON.parse(String(data)) as Message;
      this.messages.push(message);
      this.#waiters = this.#waiters.filter((w) => {
        if (!w.match(message)) return true;
        w.resolve(message);
        return false;
      });
    });
  }

  static async open(url: string, headers: Record<string, string> = {}): Promise<WsInbox> {
    const socket = new WebSocket(url, { headers });
    await new Promise<void>((resolve, reject) => {
      socket.once('open', () => resolve());
      socket.once('error', reject);
    });
    return new WsInbox(socket);
  }

  send(message: Record<string, unknown>): void {
    this.socket.send(JSON.stringify(message));
  }

  /** Sends a request with a fresh id and resolves with the reply carrying that id. */
  async request(message: Record<string, unknown>, timeoutMs = 5000): Promise<Message> {
    const id = this.#nextId++;
    const reply = this.next((m) => m.id === id, timeoutMs, `reply to ${JSON.stringify(message)}`);
    this.send({ ...message, id });
    return reply;
  }

  /** The first received message matching `match` (already received ones count). */
  next(match: (m: Message) => boolean, timeoutMs = 5000, what = 'message'): Promise<Message> {
    const seen = this.messages.find(match);
    if (seen) return Promise.resolve(seen);
    return new Promise<Message>((resolve, reject) => {
      const waiter = {
        match,
        resolve: (m: Message) => {
          clearTimeout(timer);
          resolve(m);
        },
      };
      const timer = setTimeout(() => {
        this.#waiters = this.#waiters.filter((w) => w !== waiter);
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}; got ${JSON.stringify(this.messages.slice(-5))}`));
      }, timeoutMs);
      this.#waiters.push(waiter);
    });
  }

  close(): void {
    this.socket.close();
  }
}
