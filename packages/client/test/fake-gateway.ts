import { EventEmitter } from 'node:events';
import type { AddressInfo } from 'node:net';
import { WebSocket, WebSocketServer } from 'ws';
import type { OrderFilledMessage, OrderRejectedMessage, PortfolioMessage, PriceMessage } from '@repo/protocol';

export type OrderMessage = OrderFilledMessage | OrderRejectedMessage;
/** A client frame as received: parsed, not trusted. */
export type Received = {
  type: string;
  id?: unknown;
  token?: string;
  channel?: string;
  since?: number;
  symbols?: string[];
};

export interface FakeConnection {
  readonly socket: WebSocket;
  readonly received: Received[];
  userId: number | undefined;
  readonly channels: Set<string>;
  /** The `prices` symbols in force: null for every symbol. */
  priceSymbols: ReadonlySet<string> | null;
  closed: boolean;
  /** `stopAnswering()` froze it: nothing is sent to it any more. */
  frozen: boolean;
}

const PRIVATE = new Set(['orders', 'portfolio']);
const KNOWN = new Set(['prices', 'orders', 'portfolio']);

/**
 * A small scripted gateway on a real `ws` server (port 0), speaking the client protocol
 * of docs/protocol.md and docs/delivery.md. The real gateway is built elsewhere; this one lets a test decide
 * exactly what the server says: hold a reply, drop a socket, send a duplicate, refuse a
 * token, lose history.
 */
export class FakeGateway {
  /** token → userId */
  readonly tokens = new Map<string, number>();
  /** Per user, the order events kept for `since` replay, in seq order. */
  readonly history = new Map<number, OrderMessage[]>();
  /** Per user, the oldest seq still kept; a `since` before it gets `recovered:false`. */
  readonly retainedFrom = new Map<number, number>();
  readonly portfolios = new Map<number, PortfolioMessage>();
  readonly connections: FakeConnection[] = [];
  /** The symbols `subscribe prices` may name; others get `unknown_symbol`. */
  readonly servedSymbols = new Set(['SOL', 'BTC', 'ETH']);
  /** The latest price per symbol, for the `prices` snapshot. */
  readonly latestPrices = new Map<string, PriceMessage>();
  /** When false, behaves like a server without delivery positions (no seq on `subscribed`). */
  sendsPositions = true;
  /** Returns true to take a message over (the default reply is then not sent). */
  intercept: ((connection: FakeConnection, message: Received) => boolean) | undefined;

  private readonly changes = new EventEmitter();

  private constructor(private readonly server: WebSocketServer) {
    this.changes.setMaxListeners(0);
    server.on('connection', (socket) => {
      const connection: FakeConnection = {
        socket,
        received: [],
        userId: undefined,
        channels: new Set(),
        priceSymbols: null,
        closed: false,
        frozen: false,
      };
      this.connections.push(connection);
      socket.on('message', (data) => {
        const message = JSON.parse(
          new TextDecoder().decode(Array.isArray(data) ? Buffer.concat(data) : data),
        ) as Received;
        connection.received.push(message);
        if (!this.intercept?.(connection, message)) this.reply(connection, message);
        this.changes.emit('change');
      });
      socket.on('close', () => {
        connection.closed = true;
        this.changes.emit('change');
      });
      this.changes.emit('change');
    });
  }

  static async start(): Promise<FakeGateway> {
    const server = new WebSocketServer({ port: 0, host: '127.0.0.1' });
    await new Promise<void>((resolve) => server.once('listening', () => resolve()));
    return new FakeGateway(server);
  }

  get url(): string {
    return `ws://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  /** The default protocol behaviour. */
  reply(connection: FakeConnection, message: Received): void {
    const id = message.id;
    switch (message.type) {
      case 'auth': {
        const userId = message.token === undefined ? undefined : this.tokens.get(message.token);
        if (userId === undefined)
          return this.send(connection, { type: 'error', code: 'auth_failed', message: 'bad token', id });
        connection.userId = userId;
        return this.send(connection, { type: 'auth_ok', userId, id });
      }
      case 'subscribe': {
        const channel = message.channel ?? '';
        if (!KNOWN.has(channel))
          return this.send(connection, { type: 'error', code: 'unknown_channel', message: channel, id });
        if (PRIVATE.has(channel) && connection.userId === undefined) {
          return this.send(connection, { type: 'error', code: 'auth_required', message: channel, id });
        }
        if (channel === 'prices') return this.subscribePrices(connection, message);
        connection.channels.add(channel);
        if (channel === 'orders') return this.subscribeOrders(connection, connection.userId!, message);
        this.send(connection, { type: 'subscribed', channel, id });
        const snapshot = channel === 'portfolio' ? this.portfolios.get(connection.userId!) : undefined;
        if (snapshot) this.send(connection, snapshot);
        return;
      }
      case 'unsubscribe':
        connection.channels.delete(message.channel ?? '');
        return this.send(connection, { type: 'unsubscribed', channel: message.channel, id });
      case 'ping':
        return this.send(connection, { type: 'pong', id });
      default:
        return this.send(connection, { type: 'error', code: 'invalid_message', message: 'unknown type', id });
    }
  }

  /**
   * Like the gateway: a later subscribe replaces the set; the snapshot brings the latest price
   * of the symbols that were not live on the socket before, and nothing else.
   */
  private subscribePrices(connection: FakeConnection, message: Received): void {
    const unknown = (message.symbols ?? []).filter((symbol) => !this.servedSymbols.has(symbol));
    if (unknown.length > 0) {
      return this.send(connection, { type: 'error', code: 'unknown_symbol', message: unknown.join(), id: message.id });
    }
    const before = connection.channels.has('prices') ? connection.priceSymbols : new Set<string>();
    const now = message.symbols === undefined ? null : new Set(message.symbols);
    connection.channels.add('prices');
    connection.priceSymbols = now;
    this.send(connection, {
      type: 'subscribed',
      channel: 'prices',
      id: message.id,
      ...(message.symbols === undefined ? {} : { symbols: message.symbols }),
    });
    for (const [symbol, price] of this.latestPrices) {
      if (covers(now, symbol) && !covers(before, symbol)) this.send(connection, price);
    }
  }

  private subscribeOrders(connection: FakeConnection, userId: number, message: Received): void {
    const kept = this.history.get(userId) ?? [];
    const latest = kept.at(-1)?.seq ?? 0;
    const positions = this.sendsPositions ? { seq: latest } : {};
    const since = message.since;
    if (since === undefined || !this.sendsPositions) {
      return this.send(connection, { type: 'subscribed', channel: 'orders', id: message.id, ...positions });
    }
    const oldest = this.retainedFrom.get(userId) ?? 1;
    if (since < oldest - 1) {
      return this.send(connection, {
        type: 'subscribed',
        channel: 'orders',
        id: message.id,
        recovered: false,
        seq: latest,
      });
    }
    this.send(connection, { type: 'subscribed', channel: 'orders', id: message.id, recovered: true, seq: latest });
    for (const event of kept) if ((event.seq ?? 0) > since) this.send(connection, event);
  }

  send(connection: FakeConnection, message: unknown): void {
    if (connection.socket.readyState === WebSocket.OPEN && !connection.frozen) {
      connection.socket.send(JSON.stringify(message));
    }
  }

  /** Keeps an order event in the user's history without sending it (published while a client was away). */
  record(event: OrderMessage): void {
    const kept = this.history.get(event.userId) ?? [];
    kept.push(event);
    this.history.set(event.userId, kept);
  }

  /** Records and sends an order event to the user's `orders` subscribers. */
  publishOrder(event: OrderMessage): void {
    this.record(event);
    for (const c of this.connections) if (c.userId === event.userId && c.channels.has('orders')) this.send(c, event);
  }

  publishPortfolio(portfolio: PortfolioMessage): void {
    this.portfolios.set(portfolio.userId, portfolio);
    for (const c of this.connections)
      if (c.userId === portfolio.userId && c.channels.has('portfolio')) this.send(c, portfolio);
  }

  publishPrice(price: PriceMessage): void {
    this.latestPrices.set(price.symbol, price);
    for (const c of this.connections) {
      if (c.channels.has('prices') && covers(c.priceSymbols, price.symbol)) this.send(c, price);
    }
  }

  /** Kills every open socket without a closing handshake (a crashed node, a lost network). */
  dropAll(): void {
    for (const c of this.connections) if (!c.closed) c.socket.terminate();
  }

  /**
   * Freezes a connection the way a hung gateway or a half-open TCP connection looks from the
   * client: the server stops reading it (so it answers nothing, pings included) and sends
   * nothing more, but the TCP connection stays open.
   */
  stopAnswering(connection: FakeConnection): void {
    connection.socket.pause();
    connection.frozen = true;
  }

  /** Closes every open socket with `code`. */
  closeAll(code: number, reason = ''): void {
    for (const c of this.connections) if (!c.closed) c.socket.close(code, reason);
  }

  /** The connection a client opened as its `index`-th (0-based), once it exists. */
  connection(index: number): Promise<FakeConnection> {
    return this.until(() => this.connections[index], `connection #${index}`);
  }

  /** Wakes `until()` checks on a change it cannot see (a delivery on the client side). */
  notify(): void {
    this.changes.emit('change');
  }

  /** Resolves when `check` returns a truthy value, re-checked on every frame, connection and close. */
  until<T>(check: () => T | undefined | null | false, what: string, timeoutMs = 3000): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const onChange = (): void => {
        const value = check();
        if (!value) return;
        clearTimeout(timer);
        this.changes.off('change', onChange);
        resolve(value);
      };
      const timer = setTimeout(() => {
        this.changes.off('change', onChange);
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`));
      }, timeoutMs);
      this.changes.on('change', onChange);
      onChange();
    });
  }

  async stop(): Promise<void> {
    for (const c of this.connections) c.socket.terminate();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

const covers = (set: ReadonlySet<string> | null, symbol: string) => set === null || set.has(symbol);

let nextOrderId = 1;

export function orderFilled(userId: number, seq?: number): OrderFilledMessage {
  return {
    type: 'order_filled',
    userId,
    orderId: nextOrderId++,
    side: 'buy',
    baseAsset: 'BTC',
    quoteAsset: 'USD',
    executedPrice: '50000',
    executedSize: '0.1',
    fee: '0.5',
    timestamp: new Date().toISOString(),
    ...(seq === undefined ? {} : { seq }),
  };
}

export function portfolio(userId: number, version?: number): PortfolioMessage {
  return {
    type: 'portfolio',
    userId,
    balances: [{ asset: 'USD', available: String(1000 + (version ?? 0)), locked: '0' }],
    positions: [],
    timestamp: new Date().toISOString(),
    ...(version === undefined ? {} : { version }),
  };
}

export function price(symbol: string, value: string): PriceMessage {
  return { type: 'price', symbol, price: value, timestamp: new Date().toISOString() };
}
