import { io, type Socket } from 'socket.io-client';
import { withTimeout } from '@repo/retry';
import { RawWsClient } from './raw-ws-client.ts';

/** Which client protocol the server under test speaks. */
export type Protocol = 'json' | 'socketio';

export interface TargetServer {
  protocol: Protocol;
  /**
   * Socket.IO only: `lean` (default) speaks Engine.IO/Socket.IO over the raw client;
   * `official` uses socket.io-client, which costs the generator about four times more per
   * message (it saturates the generator's core near 50,000 messages/s).
   */
  socketIoClient?: 'lean' | 'official';
  host: string;
  port: number;
  /** WebSocket path (JSON protocol). */
  path: string;
  /** Sent as the `Origin` header, for servers that check it. */
  origin?: string;
}

/** Where the fleet reports what its clients receive. */
export interface Inbox {
  /** Client `client` received the price tick carrying `seq`. */
  onPrice(client: number, seq: number): void;
  /** Client `client` received an `order_filled`. */
  onOrder(client: number, event: { userId: number; orderId: number }): void;
  /** Client `client` lost its connection (`code`: WebSocket close code, 1006 for a drop). */
  onClose(client: number, code: number): void;
}

export interface FleetOptions {
  count: number;
  channel: 'prices' | 'orders';
  /** Session tokens, one per client (private channels). */
  tokens?: string[];
  inbox: Inbox;
  /** Connections opened at once (default 100): bursts beyond the accept backlog only add retries. */
  concurrency?: number;
  /** JSON protocol, `prices`: the symbols client `client` subscribes to (default: every symbol). */
  symbolsOf?: (client: number) => readonly string[];
}

export interface Fleet {
  readonly size: number;
  close(): Promise<void>;
}

const PRICE_FIELD = Buffer.from('"price":"');

/** Where `"price":"` sat in the last frame, relative to its start: frames of one server share a layout. */
let lastPriceFieldOffset = -1;

/**
 * The seq of a price tick, read straight from the frame bytes: the digits after `"price":"` up
 * to the decimal point (see shared-state.ts). No string, no JSON.parse: the generator must stay
 * cheaper per message than the servers it measures. The field is looked for first where it
 * was in the previous frame (one server writes every tick the same way), then searched.
 * -1 when the frame is not a price tick.
 */
export function seqFromPriceFrame(data: Buffer, start: number, end: number): number {
  let at: number;
  const guess = start + lastPriceFieldOffset;
  if (lastPriceFieldOffset >= 0 && guess + PRICE_FIELD.length < end && matchesAt(data, guess)) at = guess;
  else {
    at = data.indexOf(PRICE_FIELD, start);
    if (at === -1 || at >= end) return -1;
    lastPriceFieldOffset = at - start;
  }
  let seq = 0;
  for (let i = at + PRICE_FIELD.length; i < end; i++) {
    const c = data[i]!;
    if (c < 48 || c > 57) return seq;
    seq = seq * 10 + (c - 48);
  }
  return -1;
}

function matchesAt(data: Buffer, at: number): boolean {
  for (let i = 0; i < PRICE_FIELD.length; i++) if (data[at + i] !== PRICE_FIELD[i]) return false;
  return true;
}

/** The seq carried in a price string such as `"1234.45"`. */
export function seqFromPrice(price: string): number {
  return Number.parseInt(price, 10);
}

/**
 * Opens `count` clients, each authenticated (when tokens are given) and subscribed to
 * `channel` before the promise resolves, so that a measurement never starts while clients are
 * still joining.
 */
export async function openFleet(target: TargetServer, options: FleetOptions): Promise<Fleet> {
  const concurrency = options.concurrency ?? 100;
  const closers: (() => void)[] = [];
  let next = 0;
  const worker = async () => {
    while (next < options.count) {
      const index = next++;
      const token = options.tokens?.[index];
      const close =
        target.protocol === 'json'
          ? await openJsonClient(target, index, options.channel, token, options.inbox, options.symbolsOf?.(index))
          : target.socketIoClient === 'official'
            ? await openSocketIoClient(target, index, options.channel, token, options.inbox)
            : await openLeanSocketIoClient(target, index, options.channel, token, options.inbox);
      closers.push(close);
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.min(concurrency, options.count) }, worker));
  } catch (err) {
    for (const close of closers) close();
    throw err;
  }
  return {
    size: closers.length,
    close() {
      for (const close of closers) close();
      return Promise.resolve();
    },
  };
}

const READY_TIMEOUT_MS = 15_000;

/**
 * Where one raw client stands in its handshake: `ready` once subscribed. Until then a close or
 * an error reply fails `wait`; afterwards a close is reported to the inbox.
 */
class Readiness {
  ready = false;
  readonly #index: number;
  readonly #promise: Promise<void>;
  #resolve: () => void = () => {};
  #reject: (err: Error) => void = () => {};

  constructor(index: number) {
    this.#index = index;
    this.#promise = new Promise<void>((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
    // A failure can come before anyone waits (the server refuses while the socket opens).
    this.#promise.catch(() => {});
  }

  subscribed(): void {
    this.ready = true;
    this.#resolve();
  }

  fail(why: string): void {
    this.#reject(new Error(`client ${this.#index}: ${why}`));
  }

  onClose(code: number, inbox: Inbox): void {
    if (!this.ready) this.fail(`closed (${code}) before it was subscribed`);
    else inbox.onClose(this.#index, code);
  }

  /** Resolves once subscribed; on failure or timeout destroys `client` and rejects. */
  async wait(client: RawWsClient): Promise<void> {
    await withTimeout(this.#promise, READY_TIMEOUT_MS, `client ${this.#index} subscribe`).catch((err: Error) => {
      client.destroy();
      throw err;
    });
  }
}

/** A raw WebSocket client speaking the gateway's JSON protocol. Returns its closer. */
async function openJsonClient(
  target: TargetServer,
  index: number,
  channel: 'prices' | 'orders',
  token: string | undefined,
  inbox: Inbox,
  symbols?: readonly string[],
): Promise<() => void> {
  const readiness = new Readiness(index);
  const subscribe = JSON.stringify(symbols ? { type: 'subscribe', channel, symbols } : { type: 'subscribe', channel });

  // Until subscribed, every frame is a reply to read in full; afterwards only events matter.
  const onControl = (text: string) => {
    let msg: { type?: string; code?: string; message?: string };
    try {
      msg = JSON.parse(text) as typeof msg;
    } catch {
      return;
    }
    // Only after `client` is assigned below: auth_ok answers the auth sent once it is open.
    if (msg.type === 'auth_ok') client.sendText(subscribe);
    else if (msg.type === 'subscribed' && (msg as { channel?: string }).channel === channel) {
      readiness.subscribed();
    } else if (msg.type === 'error') readiness.fail(`${msg.code}: ${msg.message}`);
  };

  const client = await RawWsClient.open(
    target.host,
    target.port,
    target.path,
    {
      onText(data, start, end) {
        if (!readiness.ready) return onControl(data.toString('utf8', start, end));
        if (channel === 'prices') {
          const seq = seqFromPriceFrame(data, start, end);
          if (seq > 0) inbox.onPrice(index, seq);
        } else {
          const msg = JSON.parse(data.toString('utf8', start, end)) as {
            type: string;
            userId: number;
            orderId: number;
          };
          if (msg.type === 'order_filled') inbox.onOrder(index, msg);
        }
      },
      onClose: (code) => readiness.onClose(code, inbox),
    },
    target.origin ? { headers: { Origin: target.origin } } : {},
  );
  if (token !== undefined) client.sendText(JSON.stringify({ type: 'auth', token }));
  else client.sendText(subscribe);
  await readiness.wait(client);
  return () => client.destroy();
}

/**
 * Socket.IO (protocol 5 over Engine.IO 4) on the raw client, WebSocket transport only: what
 * socket.io-client puts on the wire, without its per-message parsing and event machinery.
 * Packets are text frames: `0{…}` Engine.IO open, `40` / `40{…}` namespace connect, `2`/`3`
 * ping/pong, `42[event, data]` events, `42<id>[…]` with an ack id and `43<id>[…]` the ack.
 */
async function openLeanSocketIoClient(
  target: TargetServer,
  index: number,
  channel: 'prices' | 'orders',
  token: string | undefined,
  inbox: Inbox,
): Promise<() => void> {
  const readiness = new Readiness(index);
  const subscribe = (client: RawWsClient) => client.sendText(`422${JSON.stringify(['subscribe', channel])}`);

  // Before `ready`: the handshake and the two acknowledged requests (ack 1 = auth, 2 = subscribe).
  // The server speaks first (the Engine.IO open packet), possibly before `open` resolves.
  const onControl = (text: string, client: RawWsClient) => {
    if (text.startsWith('0{')) client.sendText('40');
    else if (text.startsWith('40')) {
      if (token !== undefined) client.sendText(`421${JSON.stringify(['auth', token])}`);
      else subscribe(client);
    } else if (text.startsWith('431') || text.startsWith('432')) {
      const reply = (JSON.parse(text.slice(3)) as [{ ok: boolean; code?: string }])[0];
      if (!reply.ok) return readiness.fail(`${text[2] === '1' ? 'auth' : 'subscribe'}: ${reply.code}`);
      if (text[2] === '1') subscribe(client);
      else readiness.subscribed();
    } else if (text === '2') client.sendText('3');
    else if (text.startsWith('44')) readiness.fail(`connect refused: ${text}`);
  };

  const client = await RawWsClient.open(
    target.host,
    target.port,
    '/socket.io/?EIO=4&transport=websocket',
    {
      onText(data, start, end, self) {
        if (!readiness.ready) return onControl(data.toString('utf8', start, end), self);
        // "2": Engine.IO ping, answered at once (the server closes a socket that misses it).
        if (end - start === 1 && data[start] === 0x32) return self.sendText('3');
        if (channel === 'prices') {
          const seq = seqFromPriceFrame(data, start, end);
          if (seq > 0) inbox.onPrice(index, seq);
        } else if (data[start] === 0x34 && data[start + 1] === 0x32) {
          const [event, msg] = JSON.parse(data.toString('utf8', start + 2, end)) as [
            string,
            { userId: number; orderId: number },
          ];
          if (event === 'order_filled') inbox.onOrder(index, msg);
        }
      },
      onClose: (code) => readiness.onClose(code, inbox),
    },
    target.origin ? { headers: { Origin: target.origin } } : {},
  );
  await readiness.wait(client);
  return () => client.destroy();
}

/** A socket.io-client over the WebSocket transport only. Returns its closer. */
async function openSocketIoClient(
  target: TargetServer,
  index: number,
  channel: 'prices' | 'orders',
  token: string | undefined,
  inbox: Inbox,
): Promise<() => void> {
  const socket: Socket = io(`http://${target.host}:${target.port}`, {
    transports: ['websocket'],
    forceNew: true,
    reconnection: false,
    timeout: READY_TIMEOUT_MS,
  });
  type Reply = { ok: boolean; code?: string };
  const request = (event: string, arg: string) =>
    withTimeout(
      new Promise<Reply>((resolve) => socket.emit(event, arg, (reply: Reply) => resolve(reply))),
      READY_TIMEOUT_MS,
      `client ${index} ${event}`,
    );
  try {
    await withTimeout(
      new Promise<void>((resolve, reject) => {
        socket.once('connect', () => resolve());
        socket.once('connect_error', (err) => reject(err));
      }),
      READY_TIMEOUT_MS,
      `client ${index} connect`,
    );
    if (token !== undefined) {
      const auth = await request('auth', token);
      if (!auth.ok) throw new Error(`client ${index}: auth: ${auth.code}`);
    }
    if (channel === 'prices')
      socket.on('price', (msg: { price: string }) => inbox.onPrice(index, seqFromPrice(msg.price)));
    else socket.on('order_filled', (msg: { userId: number; orderId: number }) => inbox.onOrder(index, msg));
    const subscribed = await request('subscribe', channel);
    if (!subscribed.ok) throw new Error(`client ${index}: subscribe: ${subscribed.code}`);
  } catch (err) {
    socket.disconnect();
    throw err;
  }
  socket.on('disconnect', (reason) => inbox.onClose(index, reason === 'io client disconnect' ? 1000 : 1006));
  return () => {
    socket.disconnect();
  };
}
