import { io, type Socket } from 'socket.io-client';
import { RawWsClient } from './raw-ws-client.ts';

/** Which client protocol the server under test speaks. */
export type Protocol = 'json' | 'socketio';

export interface TargetServer {
  protocol: Protocol;
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
}

export interface Fleet {
  readonly size: number;
  close(): Promise<void>;
}

const PRICE_FIELD = Buffer.from('"price":"');

/**
 * The seq of a price tick, read straight from the frame bytes: the digits after `"price":"` up
 * to the decimal point (see shared-state.ts). No string, no JSON.parse: the generator must stay
 * cheaper per message than the servers it measures. -1 when the frame is not a price tick.
 */
export function seqFromPriceFrame(data: Buffer, start: number, end: number): number {
  const at = data.indexOf(PRICE_FIELD, start);
  if (at === -1 || at >= end) return -1;
  let seq = 0;
  for (let i = at + PRICE_FIELD.length; i < end; i++) {
    const c = data[i]!;
    if (c < 48 || c > 57) return seq;
    seq = seq * 10 + (c - 48);
  }
  return -1;
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
          ? await openJsonClient(target, index, options.channel, token, options.inbox)
          : await openSocketIoClient(target, index, options.channel, token, options.inbox);
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
    async close() {
      for (const close of closers) close();
    },
  };
}

const READY_TIMEOUT_MS = 15_000;

/** A raw WebSocket client speaking the gateway's JSON protocol. Returns its closer. */
async function openJsonClient(
  target: TargetServer,
  index: number,
  channel: 'prices' | 'orders',
  token: string | undefined,
  inbox: Inbox,
): Promise<() => void> {
  let ready = false;
  let settle: { resolve: () => void; reject: (err: Error) => void } | undefined;
  const readyPromise = new Promise<void>((resolve, reject) => (settle = { resolve, reject }));
  let client: RawWsClient | undefined;

  // Until subscribed, every frame is a reply to read in full; afterwards only events matter.
  const onControl = (text: string) => {
    let msg: { type?: string; code?: string; message?: string };
    try {
      msg = JSON.parse(text) as typeof msg;
    } catch {
      return;
    }
    if (msg.type === 'auth_ok') client!.sendText(JSON.stringify({ type: 'subscribe', channel }));
    else if (msg.type === 'subscribed' && (msg as { channel?: string }).channel === channel) {
      ready = true;
      settle!.resolve();
    } else if (msg.type === 'error') settle!.reject(new Error(`client ${index}: ${msg.code}: ${msg.message}`));
  };

  client = await RawWsClient.open(
    target.host,
    target.port,
    target.path,
    {
      onText(data, start, end) {
        if (!ready) return onControl(data.toString('utf8', start, end));
        if (channel === 'prices') {
          const seq = seqFromPriceFrame(data, start, end);
          if (seq > 0) inbox.onPrice(index, seq);
        } else {
          const msg = JSON.parse(data.toString('utf8', start, end)) as { type: string; userId: number; orderId: number };
          if (msg.type === 'order_filled') inbox.onOrder(index, msg);
        }
      },
      onClose(code) {
        if (!ready) settle?.reject(new Error(`client ${index} closed (${code}) before it was subscribed`));
        else inbox.onClose(index, code);
      },
    },
    target.origin ? { headers: { Origin: target.origin } } : {},
  );
  if (token !== undefined) client.sendText(JSON.stringify({ type: 'auth', token }));
  else client.sendText(JSON.stringify({ type: 'subscribe', channel }));
  await withTimeout(readyPromise, READY_TIMEOUT_MS, `client ${index} subscribe`).catch((err: Error) => {
    client!.destroy();
    throw err;
  });
  const opened = client;
  return () => opened.destroy();
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
    if (channel === 'prices') socket.on('price', (msg: { price: string }) => inbox.onPrice(index, seqFromPrice(msg.price)));
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

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms);
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (err: unknown) => {
        clearTimeout(timer);
        reject(err instanceof Error ? err : new Error(String(err)));
      },
    );
  });
}
