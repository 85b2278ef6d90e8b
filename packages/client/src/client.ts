import {
  CLOSE_CODES,
  isChannel,
  PRIVATE_CHANNELS,
  parseSymbolList,
  type AuthOkMessage,
  type Channel,
  type ChannelMessage,
  type ClientErrorCode,
  type ClientMessage,
  type ErrorCode,
  type ErrorMessage,
  type EventMessage,
  type OrderFilledMessage,
  type OrderRejectedMessage,
  type PortfolioMessage,
  type PriceMessage,
  type ReplyMessage,
  type SubscribeRequest,
  type SubscribedMessage,
} from '@repo/protocol';
import { backoffDelay, TimeoutError, type BackoffOptions } from '@repo/retry';
import { nextReconnectAttempt } from './backoff.ts';
import { ConnectionClosedError, ServerError } from './errors.ts';
import { Listeners } from './listeners.ts';
import { DeliveryPositions } from './positions.ts';
import { PriceSubscriptionState, unionOf, wants, type SymbolFilter } from './price-symbols.ts';
import { REPLY_TYPE, RequestTable, type PendingRequest, type ReplyTo } from './requests.ts';
import { decodeFrame, resolveSocketConstructor, type SocketConstructor, type SocketLike } from './socket.ts';
import { SubscriptionRegistry, type SubscriptionEntry } from './subscriptions.ts';
import { Watchdog } from './watchdog.ts';

/**
 * - `connecting`: the first connection is being made (socket opening, or open and restoring).
 * - `open`: connected, and the remembered token and subscriptions are restored; requests go
 *   straight out.
 * - `reconnecting`: the connection was lost (or the first attempt failed); waiting out the
 *   backoff, or connected again and still restoring auth and subscriptions.
 * - `closed`: `close()` was called. Final.
 */
export type ConnectionState = 'connecting' | 'open' | 'reconnecting' | 'closed';

/** The options of `subscribe()`. */
export interface SubscribeOptions {
  /**
   * On `prices`: only these symbols' ticks reach the handler (snapshot included); absent,
   * every symbol. At most 100, each 1-16 characters of A-Z and 0-9, and served by the gateway
   * (else `unknown_symbol`). Handlers with different sets share one server subscription to the
   * union of their sets; each gets only its own symbols.
   */
  symbols?: readonly string[];
}

/** The channels whose state the app must reload over REST after `recovered:false`. */
export type ResyncChannel = 'orders' | 'portfolio';

export interface ClientOptions {
  /** The WebSocket constructor. Default `globalThis.WebSocket`; in Node pass `ws`'s `WebSocket`. */
  WebSocket?: unknown;
  /** Full-jitter reconnect backoff. Defaults: `baseDelayMs` 250, `maxDelayMs` 10000. */
  reconnect?: { baseDelayMs?: number; maxDelayMs?: number };
  /** How long a request waits for its reply, queued time included. Default 10000 ms. */
  requestTimeoutMs?: number;
  /**
   * How long a new socket may take to open (TCP connect and the WebSocket upgrade). A server or
   * proxy that accepts the connection and never answers the upgrade would otherwise hold the
   * client in `reconnecting` for ever: past this the socket is dropped and the next attempt
   * follows on the backoff. Default 10000 ms.
   */
  openTimeoutMs?: number;
  /**
   * Dead-connection watchdog: after this long without any frame from the server the client sends
   * the protocol's `ping`. Browsers cannot see WebSocket ping frames, so this is how a connection
   * that died without closing is noticed. Default 15000 ms.
   */
  pingIntervalMs?: number;
  /**
   * When no frame at all arrives this long after the watchdog's `ping`, the socket counts as dead:
   * the client closes it (4000 `not answering`) and reconnects as after any drop. Default 10000 ms.
   */
  pongTimeoutMs?: number;
  /** Where dropped frames, throwing handlers and unheard errors are reported. Default `console`. */
  logger?: { warn(...args: unknown[]): void };
}

const DEFAULT_BASE_DELAY_MS = 250;
const DEFAULT_MAX_DELAY_MS = 10_000;
const DEFAULT_REQUEST_TIMEOUT_MS = 10_000;
const DEFAULT_OPEN_TIMEOUT_MS = 10_000;
const DEFAULT_PING_INTERVAL_MS = 15_000;
const DEFAULT_PONG_TIMEOUT_MS = 10_000;

/** The watchdog's ping carries no `id`: its pong settles no request, arriving is its whole job. */
const WATCHDOG_PING = JSON.stringify({ type: 'ping' });
/** Node's longest timer; a longer delay would fire at once. */
const MAX_TIMER_MS = 2 ** 31 - 1;

type ClientEvents = {
  state: [state: ConnectionState];
  error: [error: ServerError];
  resync: [channel: ResyncChannel];
  reconnected: [];
};

const monotonicNow = (): number => globalThis.performance?.now() ?? Date.now();

/**
 * Failures worth a new connection rather than giving up on the session: the socket broke or
 * went silent, or the server could not answer right now (its Redis or session store is
 * down, we were too fast). Any other refusal while restoring (auth_failed, auth_required,
 * too_many_subscriptions…) is definitive and ends what it refused.
 */
const RETRYABLE_CODES: ReadonlySet<ClientErrorCode> = new Set<ClientErrorCode>([
  'connection_closed',
  'timeout',
  'rate_limited',
  'broker_unavailable',
  'internal_error',
]);
const isRetryable = (error: unknown): boolean =>
  !(error instanceof ServerError || error instanceof TimeoutError) || RETRYABLE_CODES.has(error.code);

function positiveNumberOption(name: string, value: unknown, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0 || value > MAX_TIMER_MS) {
    const got = typeof value === 'number' ? value : typeof value;
    throw new RangeError(`${name} must be a positive number of milliseconds, at most ${MAX_TIMER_MS}, got ${got}`);
  }
  return value;
}

/**
 * Opens a connection to the gateway at `url` at once and returns the client. See the module
 * comment in index.ts for a usage example.
 */
export function connect(url: string, options: ClientOptions = {}): TradewireClient {
  return new TradewireClient(url, options);
}

/**
 * The typed client. One explicit state machine (`state`, changed only by `setState`); every
 * continuation after an `await` checks that its socket is still the current one and the
 * client is not closed, so a `close()` or a newer socket always wins over a late reply.
 */
export class TradewireClient {
  private currentState: ConnectionState = 'connecting';
  /** The socket being opened or in use; null while waiting out a backoff or once closed. */
  private socket: SocketLike | null = null;
  private reconnectTimer: ReturnType<typeof setTimeout> | undefined;
  /** Watches the current socket from its `open` event until it is lost or replaced. */
  private watchdog: Watchdog | undefined;
  private attempt = 0;
  private hasBeenOpen = false;
  /** Confirmed by an `auth_ok`; replayed on every new socket until logout or rejection. */
  private token: string | undefined;
  private userId: number | undefined;

  private readonly url: string;
  private readonly Socket: SocketConstructor;
  private readonly backoff: BackoffOptions;
  private readonly pingIntervalMs: number;
  private readonly pongTimeoutMs: number;
  private readonly openTimeoutMs: number;
  private readonly logger: { warn(...args: unknown[]): void };
  private readonly requests: RequestTable;
  private readonly subscriptions = new SubscriptionRegistry();
  /** The `orders` subscribe in flight: a handler joining meanwhile waits for it (see joinLiveOrders). */
  private ordersSubscribing: Promise<unknown> | undefined;
  private readonly positions = new DeliveryPositions();
  private readonly prices = new PriceSubscriptionState();
  private readonly listeners: Listeners<ClientEvents>;

  /** Prefer `connect(url, options)`. Throws on invalid options, naming the option. */
  constructor(url: string, options: ClientOptions = {}) {
    if (typeof url !== 'string' || url === '') throw new TypeError('connect(url): url must be a non-empty string');
    this.url = url;
    this.Socket = resolveSocketConstructor(options.WebSocket);
    const baseDelayMs = positiveNumberOption(
      'reconnect.baseDelayMs',
      options.reconnect?.baseDelayMs,
      DEFAULT_BASE_DELAY_MS,
    );
    const maxDelayMs = positiveNumberOption(
      'reconnect.maxDelayMs',
      options.reconnect?.maxDelayMs,
      DEFAULT_MAX_DELAY_MS,
    );
    if (maxDelayMs < baseDelayMs) {
      throw new RangeError(
        `reconnect.maxDelayMs (${maxDelayMs}) must not be below reconnect.baseDelayMs (${baseDelayMs})`,
      );
    }
    this.backoff = { baseDelayMs, maxDelayMs };
    this.requests = new RequestTable(
      positiveNumberOption('requestTimeoutMs', options.requestTimeoutMs, DEFAULT_REQUEST_TIMEOUT_MS),
    );
    this.pingIntervalMs = positiveNumberOption('pingIntervalMs', options.pingIntervalMs, DEFAULT_PING_INTERVAL_MS);
    this.pongTimeoutMs = positiveNumberOption('pongTimeoutMs', options.pongTimeoutMs, DEFAULT_PONG_TIMEOUT_MS);
    this.openTimeoutMs = positiveNumberOption('openTimeoutMs', options.openTimeoutMs, DEFAULT_OPEN_TIMEOUT_MS);
    this.logger = options.logger ?? console;
    this.listeners = new Listeners((name, error) =>
      this.logger.warn(`tradewire client: a "${String(name)}" listener threw`, error),
    );
    // A bad URL throws here, from connect(), instead of turning into an endless reconnect loop.
    this.openSocket({ throwOnError: true });
  }

  get state(): ConnectionState {
    return this.currentState;
  }

  /**
   * Listens for connection events; returns a function that stops listening.
   * - `state`: every state change (the initial `connecting` is already set when `connect()` returns).
   * - `error`: server errors not tied to a request (`session_revoked`, `session_expired`,
   *   `rate_limited`…), and failures while restoring auth or a subscription after a reconnect.
   * - `resync`: the server could not replay from our position (`recovered:false`); reload
   *   that channel's state over REST.
   * - `reconnected`: a reconnect finished re-authenticating and resubscribing.
   */
  on(event: 'state', listener: (state: ConnectionState) => void): () => void;
  on(event: 'error', listener: (error: ServerError) => void): () => void;
  on(event: 'resync', listener: (channel: ResyncChannel) => void): () => void;
  on(event: 'reconnected', listener: () => void): () => void;
  on<K extends keyof ClientEvents>(event: K, listener: (...args: ClientEvents[K]) => void): () => void {
    return this.listeners.on(event, listener);
  }

  /**
   * Authenticates the connection. On `auth_ok` the token is remembered and replayed after each
   * reconnect. Rejects with `ServerError` code `auth_failed` (the token is then forgotten if it
   * was the remembered one), `connection_closed` or `timeout`. Signing in as another user ends
   * the previous user's `orders` and `portfolio` subscriptions (the server drops them too):
   * their handlers hear nothing more, and a reconnect does not subscribe them for the new user.
   * A session that ends (`session_revoked`, `session_expired`, emitted as `error`) ends them
   * too, whoever signs in next: subscribe again after signing in.
   */
  async auth(token: string): Promise<{ userId: number }> {
    if (typeof token !== 'string' || token === '') throw new TypeError('auth(token): token must be a non-empty string');
    try {
      const reply = await this.request({ type: 'auth', token }, (ok) => {
        const previous = this.userId;
        this.userId = checkedUserId(ok);
        this.token = token;
        if (previous !== undefined && previous !== this.userId) {
          for (const channel of PRIVATE_CHANNELS) {
            this.subscriptions.endActive(channel);
            this.subscriptions.markOffServer(channel);
          }
        }
      });
      return { userId: reply.userId };
    } catch (error) {
      if (error instanceof ServerError && error.code === 'auth_failed' && this.token === token) this.token = undefined;
      throw error;
    }
  }

  /**
   * Forgets the token: later reconnects are anonymous. The current socket stays open and
   * stays authenticated on the server until it is replaced; call `close()` to end it now.
   */
  logout(): void {
    this.token = undefined;
  }

  /**
   * Subscribes `handler` to `channel`. Resolves once the server confirmed (`subscribed`); the
   * snapshot that follows is delivered to the handler. Resolves with an unsubscribe function.
   * The subscription survives reconnects. Rejects with the server's code (`auth_required`,
   * `unknown_channel`, `unknown_symbol`…), `connection_closed` or `timeout`; the handler is
   * then not kept. A bad `options.symbols` rejects with `invalid_message` before anything is sent.
   * A further handler on `orders` joins the subscription the client already has, without a
   * request: it gets the events from there on, and the other handlers miss none.
   *
   * On `prices`, `options.symbols` limits the handler to those symbols. The server is asked for
   * the union of every handler's symbols (every symbol when one handler wants all), and each
   * handler gets only its own: a handler that joins gets the latest price of each of its
   * symbols first (from the server's snapshot, or from what this client already received), then
   * live ticks. Unsubscribing a handler narrows the server's set to what the others still need.
   */
  async subscribe<C extends Channel>(
    channel: C,
    handler: (message: ChannelMessage<C>) => void,
    options: SubscribeOptions = {},
  ): Promise<() => Promise<void>> {
    if (!isChannel(channel)) throw new ServerError('unknown_channel', `unknown channel ${String(channel)}`);
    if (typeof handler !== 'function') throw new TypeError('subscribe(channel, handler): handler must be a function');
    const symbols = symbolsOption(channel, options);
    const entry = this.subscriptions.add(channel, handler as (message: EventMessage) => void, symbols);
    try {
      // No await between the check and the send below: two calls at once must not both send.
      if (channel === 'orders') while (this.ordersSubscribing) await this.ordersSubscribing.catch(() => {});
      if (!(channel === 'orders' && this.joinLiveOrders(entry))) {
        // Every handler of the channel counts, those still in flight too: the last request sent wins.
        const message = subscribeRequest(channel, this.subscriptions.entries(channel), undefined);
        const confirmed = this.request(message, (reply) => {
          if (!this.subscriptions.has(entry)) return;
          entry.active = true;
          // Others on `portfolio` already have the state the snapshot carries; this one does not.
          entry.awaitingSnapshot = channel === 'portfolio';
          this.onSubscribed(channel, reply, undefined, entry);
        });
        if (channel === 'orders') {
          this.ordersSubscribing = confirmed;
          void confirmed.then(
            () => this.ordersSubscribed(confirmed),
            () => this.ordersSubscribed(confirmed),
          );
        }
        await confirmed;
      }
    } catch (error) {
      this.subscriptions.remove(entry);
      throw error;
    }
    let unsubscribed: Promise<void> | undefined;
    return () => (unsubscribed ??= this.unsubscribe(entry));
  }

  /**
   * Attaches a handler to the `orders` subscription this client already has; false when there
   * is none. A second subscribe would make the gateway start the stream again at its latest
   * `seq`, and an event committed but not yet published at that moment would then be lost for
   * every handler. There is no snapshot to fetch on `orders`, so joining costs nothing; a
   * reconnect resubscribes the channel with `since` as before.
   */
  private joinLiveOrders(entry: SubscriptionEntry): boolean {
    if (!this.subscriptions.has(entry) || this.subscriptions.activeEntries('orders').length === 0) return false;
    entry.active = true;
    return true;
  }

  private ordersSubscribed(settled: Promise<unknown>): void {
    if (this.ordersSubscribing === settled) this.ordersSubscribing = undefined;
  }

  /** Round trip in milliseconds, measured from when the ping actually went out. */
  async ping(): Promise<number> {
    let roundTripMs = 0;
    await this.request({ type: 'ping' }, (_pong, request) => {
      roundTripMs = monotonicNow() - request.sentAt;
    });
    return roundTripMs;
  }

  /** Closes for good: state `closed`, no reconnect, every waiting request rejects. */
  close(): void {
    if (this.currentState === 'closed') return;
    if (this.reconnectTimer !== undefined) {
      clearTimeout(this.reconnectTimer);
      this.reconnectTimer = undefined;
    }
    const socket = this.socket;
    this.socket = null;
    this.stopWatchdog();
    this.setState('closed');
    this.requests.rejectAll(() => new ConnectionClosedError('the client was closed'));
    this.subscriptions.clear();
    this.prices.reset();
    if (socket) closeQuietly(socket, CLOSE_CODES.normal, 'client closed');
  }

  // ---- state machine ----------------------------------------------------------------------

  private setState(next: ConnectionState): void {
    if (this.currentState === next) return;
    this.currentState = next;
    this.listeners.emit('state', next);
  }

  /** Whether `socket` is still the one this client works with. */
  private isCurrent(socket: SocketLike): boolean {
    return this.socket === socket && this.currentState !== 'closed';
  }

  private openSocket({ throwOnError }: { throwOnError: boolean }): void {
    let socket: SocketLike;
    try {
      socket = new this.Socket(this.url);
    } catch (error) {
      if (throwOnError) throw error;
      this.logger.warn('tradewire client: could not create a WebSocket', error);
      this.setState('reconnecting');
      if (this.currentState === 'reconnecting') this.scheduleReconnect();
      return;
    }
    this.socket = socket;
    // The gateway sends text; should bytes ever come, ArrayBuffer decodes synchronously, a Blob would not.
    socket.binaryType = 'arraybuffer';
    const openTimer = setTimeout(() => {
      if (!this.isCurrent(socket)) return;
      this.logger.warn(`tradewire client: the connection did not open within ${this.openTimeoutMs} ms; reconnecting`);
      this.abandonSocket(socket);
    }, this.openTimeoutMs);
    socket.addEventListener('open', () => {
      clearTimeout(openTimer);
      if (!this.isCurrent(socket)) return;
      this.startWatchdog(socket);
      void this.onSocketOpen(socket);
    });
    socket.addEventListener('message', (event) => {
      if (!this.isCurrent(socket)) return;
      this.watchdog?.frameReceived();
      this.onFrame(event.data);
    });
    socket.addEventListener('close', (event) => {
      clearTimeout(openTimer);
      this.onSocketLost(socket, event.code);
    });
    // Browsers give no detail here and a `close` event always follows, which is where we
    // reconnect. The listener must exist anyway: `ws` throws an 'error' nobody listens to.
    socket.addEventListener('error', () => {});
  }

  /** Restores the session on a fresh socket, then flushes what was queued meanwhile. */
  private async onSocketOpen(socket: SocketLike): Promise<void> {
    try {
      await this.restoreSession(socket);
    } catch (error) {
      if (!this.isCurrent(socket)) return;
      // Timed out, or the server could not serve us right now: try again on a new socket,
      // after a backoff that keeps growing (this connection never became open).
      this.logger.warn('tradewire client: restoring the session failed; reconnecting', error);
      this.abandonSocket(socket);
      return;
    }
    if (!this.isCurrent(socket)) return;
    const isReconnect = this.hasBeenOpen;
    this.hasBeenOpen = true;
    // Queued requests go out before the state changes, so a request made by a `state`
    // listener cannot overtake one that has been waiting.
    for (const request of this.requests.takeQueued()) this.transmit(socket, request);
    this.setState('open');
    if (isReconnect && this.isCurrent(socket) && this.currentState === 'open') this.listeners.emit('reconnected');
  }

  /** Re-authenticates with the remembered token, then resubscribes every live channel. */
  private async restoreSession(socket: SocketLike): Promise<void> {
    const token = this.token;
    if (token !== undefined) {
      try {
        await this.sendNow(socket, { type: 'auth', token }, (ok) => {
          this.userId = checkedUserId(ok);
        });
      } catch (error) {
        if (!this.isCurrent(socket) || isRetryable(error)) throw error;
        // The token stopped working (revoked, expired): forget it and tell the app, which
        // should send the user to log in. Public channels are still restored below.
        if (this.token === token) this.token = undefined;
        this.emitError(error as ServerError);
      }
      if (!this.isCurrent(socket)) return;
    }
    await Promise.all(this.subscriptions.liveChannels().map((channel) => this.resubscribe(socket, channel)));
  }

  private async resubscribe(socket: SocketLike, channel: Channel): Promise<void> {
    const since = channel === 'orders' ? this.positions.orderSeq(this.userId) : undefined;
    // The confirmed handlers' symbols; a subscribe still waiting in the queue adds its own after.
    const message = subscribeRequest(channel, this.subscriptions.activeEntries(channel), since);
    try {
      await this.sendNow(socket, message, (reply) => this.onSubscribed(channel, reply, since));
    } catch (error) {
      if (!this.isCurrent(socket) || isRetryable(error)) throw error;
      // Refused (auth_required after a failed re-auth, too_many_subscriptions…): the
      // subscription is over; its handlers hear nothing more, the app hears why.
      this.subscriptions.endActive(channel);
      this.emitError(error as ServerError);
    }
  }

  private onSocketLost(socket: SocketLike, closeCode: number | undefined): void {
    if (this.socket !== socket) return;
    this.socket = null;
    this.stopWatchdog();
    const wasOpen = this.currentState === 'open';
    this.subscriptions.socketLost();
    this.prices.reset();
    this.requests.rejectSent(
      () => new ConnectionClosedError(`connection lost (close code ${closeCode ?? 'none'}) before the reply arrived`),
    );
    if (this.currentState === 'closed') return;
    this.attempt = nextReconnectAttempt(this.attempt, wasOpen, closeCode);
    this.setState('reconnecting');
    if (this.currentState === 'reconnecting') this.scheduleReconnect();
  }

  /** Gives up on a socket that does not open, or is open but not serving us, and reconnects. */
  private abandonSocket(socket: SocketLike): void {
    this.onSocketLost(socket, CLOSE_CODES.notAnswering);
    closeQuietly(socket, CLOSE_CODES.notAnswering, 'not answering');
  }

  private startWatchdog(socket: SocketLike): void {
    this.stopWatchdog();
    this.watchdog = new Watchdog({
      pingIntervalMs: this.pingIntervalMs,
      pongTimeoutMs: this.pongTimeoutMs,
      now: monotonicNow,
      sendPing: () => {
        try {
          socket.send(WATCHDOG_PING);
        } catch (error) {
          // Only a socket that is not open throws; its close event takes over.
          this.logger.warn('tradewire client: watchdog ping failed', error);
        }
      },
      onDead: () => {
        if (!this.isCurrent(socket)) return;
        this.logger.warn(
          `tradewire client: no frame within ${this.pongTimeoutMs} ms after a ping; ` +
            'the connection is dead, reconnecting',
        );
        this.abandonSocket(socket);
      },
    });
  }

  private stopWatchdog(): void {
    this.watchdog?.stop();
    this.watchdog = undefined;
  }

  private scheduleReconnect(): void {
    const delay = backoffDelay(this.attempt, this.backoff);
    this.attempt += 1;
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      if (this.currentState !== 'reconnecting') return;
      this.openSocket({ throwOnError: false });
    }, delay);
  }

  // ---- requests ---------------------------------------------------------------------------

  /** A user request: sent now when open, else queued until the session is restored. */
  private request<M extends ClientMessage>(
    message: M,
    onReply?: (reply: ReplyTo<M>, request: PendingRequest) => void,
  ): Promise<ReplyTo<M>> {
    if (this.currentState === 'closed') return Promise.reject(new ConnectionClosedError('the client is closed'));
    const { request, reply } = this.requests.create(message, onReply);
    if (this.currentState === 'open' && this.socket) this.transmit(this.socket, request);
    else this.requests.enqueue(request);
    return reply;
  }

  /** A restore request: bypasses the queue, it is what the queue waits for. */
  private sendNow<M extends ClientMessage>(
    socket: SocketLike,
    message: M,
    onReply?: (reply: ReplyTo<M>) => void,
  ): Promise<ReplyTo<M>> {
    const { request, reply } = this.requests.create(message, onReply);
    this.transmit(socket, request);
    return reply;
  }

  private transmit(socket: SocketLike, request: PendingRequest): void {
    request.sent = true;
    request.sentAt = monotonicNow();
    try {
      socket.send(request.frame);
    } catch (error) {
      // Only a socket that is not open throws; its close event rejects the request.
      this.logger.warn('tradewire client: send failed', error);
    }
  }

  private async unsubscribe(entry: SubscriptionEntry): Promise<void> {
    if (!this.subscriptions.remove(entry)) return;
    const { channel } = entry;
    // There is no server subscription on this socket: it was lost with the connection, and is
    // not restored without handlers.
    if (!this.subscriptions.isOnServer(channel)) return;
    if (this.subscriptions.count(channel) > 0) {
      // Other handlers still use the server subscription; on `prices` they may need fewer symbols.
      if (channel === 'prices') await this.narrowPrices();
      return;
    }
    this.subscriptions.markOffServer(channel);
    if (channel === 'prices') this.prices.reset();
    try {
      await this.request({ type: 'unsubscribe', channel });
    } catch (error) {
      if (error instanceof ConnectionClosedError) return; // no connection, no subscription
      throw error;
    }
  }

  /** Asks the server for the symbols the remaining `prices` handlers want, when that is fewer. */
  private async narrowPrices(): Promise<void> {
    const message = subscribeRequest('prices', this.subscriptions.entries('prices'), undefined);
    if (this.prices.isOnServer(message.symbols ?? null)) return;
    try {
      await this.request(message, (reply) => this.onSubscribed('prices', reply, undefined));
    } catch (error) {
      if (error instanceof ConnectionClosedError) return; // the next connection asks for the right set
      throw error;
    }
  }

  // ---- incoming frames --------------------------------------------------------------------

  private onFrame(data: unknown): void {
    const decoded = decodeFrame(data);
    if (!decoded.ok) {
      this.logger.warn(`tradewire client: dropped a frame: ${decoded.reason}`);
      return;
    }
    const message = decoded.message;
    switch (message.type) {
      case 'auth_ok':
      case 'subscribed':
      case 'unsubscribed':
      case 'pong':
        this.onReply(message);
        return;
      case 'error':
        this.onErrorMessage(message);
        return;
      case 'price':
        this.onPrice(message);
        return;
      case 'order_filled':
      case 'order_rejected':
        this.onOrderEvent(message);
        return;
      case 'portfolio':
        this.onPortfolio(message);
        return;
      default:
        this.logger.warn(
          `tradewire client: dropped a message of unknown type ${JSON.stringify((message as { type: string }).type)}`,
        );
    }
  }

  private onReply(reply: ReplyMessage): void {
    if (reply.type === 'pong' && reply.id === undefined) return; // the watchdog's: it arrived, that was all
    const request = this.requests.get(reply.id);
    if (!request) {
      // Its request timed out or was rejected with the old socket; nobody waits for it.
      this.logger.warn(`tradewire client: dropped a ${reply.type} reply that matches no waiting request`);
      return;
    }
    const expected = REPLY_TYPE[request.message.type];
    if (reply.type !== expected) {
      this.requests.settle(request, {
        error: new ServerError(
          'invalid_message',
          `expected ${expected} in reply to ${request.message.type}, got ${reply.type}`,
        ),
      });
      return;
    }
    this.requests.settle(request, { reply });
  }

  private onErrorMessage(message: ErrorMessage): void {
    const code: ErrorCode = typeof message.code === 'string' ? message.code : 'internal_error';
    const text = typeof message.message === 'string' ? message.message : code;
    const request = message.id === undefined ? undefined : this.requests.get(message.id);
    if (request) {
      const channel =
        request.message.type === 'subscribe' || request.message.type === 'unsubscribe'
          ? request.message.channel
          : undefined;
      this.requests.settle(request, { error: new ServerError(code, text, channel ? { channel } : {}) });
      return;
    }
    if (code === 'session_revoked' || code === 'session_expired') {
      // A dead session stays dead: replaying its token after a reconnect would only fail again.
      this.token = undefined;
      // The gateway ended the socket's private subscriptions. Their handlers end too, as when a
      // token is refused at a reconnect: kept, they would look subscribed and hear nothing, even
      // after the same user signs in again, and a new subscribe would join them.
      for (const channel of PRIVATE_CHANNELS) {
        this.subscriptions.endActive(channel);
        this.subscriptions.markOffServer(channel);
      }
    }
    this.emitError(new ServerError(code, text));
  }

  /** `joining`: the handler this reply confirms, when it is a new one. */
  private onSubscribed(
    channel: Channel,
    reply: SubscribedMessage,
    sentSince: number | undefined,
    joining?: SubscriptionEntry,
  ): void {
    this.subscriptions.markOnServer(channel);
    if (channel === 'prices') {
      const before = this.prices.acknowledged(reply.symbols);
      // The gateway repeats no price the socket already has live: a joining handler gets those
      // from here, synchronously, before any frame behind the reply.
      if (joining) {
        for (const message of this.prices.alreadyLive(joining.symbols, before)) this.deliver([joining], message);
      }
    }
    if (channel === 'orders') this.positions.onOrdersSubscribed(this.userId, reply, sentSince);
    if (reply.recovered === false && (channel === 'orders' || channel === 'portfolio')) {
      this.listeners.emit('resync', channel);
    }
  }

  private onPrice(message: PriceMessage): void {
    if (typeof message.symbol !== 'string') {
      this.logger.warn('tradewire client: dropped a price without a symbol');
      return;
    }
    this.prices.received(message);
    const entries = this.subscriptions.activeEntries('prices').filter((entry) => wants(entry.symbols, message.symbol));
    this.deliver(entries, message);
  }

  private onOrderEvent(message: OrderFilledMessage | OrderRejectedMessage): void {
    const userId = typeof message.userId === 'number' ? message.userId : (this.userId ?? 0);
    // Already delivered: the relay published twice, or a replay overlapped live delivery.
    if (!this.positions.acceptOrderEvent(userId, message.seq)) return;
    this.deliver(this.subscriptions.activeEntries('orders'), message);
  }

  private onPortfolio(message: PortfolioMessage): void {
    const userId = typeof message.userId === 'number' ? message.userId : (this.userId ?? 0);
    const freshness = this.positions.acceptPortfolio(userId, message.version);
    if (freshness === 'stale') return; // an older state than the one already shown
    const recipients = this.subscriptions
      .activeEntries('portfolio')
      .filter((entry) => freshness === 'new' || entry.awaitingSnapshot);
    for (const entry of recipients) entry.awaitingSnapshot = false;
    this.deliver(recipients, message);
  }

  private deliver(entries: SubscriptionEntry[], message: EventMessage): void {
    for (const entry of entries) {
      try {
        entry.handler(message);
      } catch (error) {
        this.logger.warn(`tradewire client: a ${entry.channel} handler threw on a ${message.type} message`, error);
      }
    }
  }

  private emitError(error: ServerError): void {
    if (this.listeners.count('error') === 0) {
      this.logger.warn(`tradewire client: server error ${error.code}: ${error.message}`);
      return;
    }
    this.listeners.emit('error', error);
  }
}

/**
 * The `symbols` of `subscribe()` as a filter (null: every symbol). Checked here with the
 * protocol's own rules, so a bad set fails before it is sent, with the code the gateway would
 * answer.
 */
function symbolsOption(channel: Channel, options: SubscribeOptions | undefined): SymbolFilter {
  const symbols = options?.symbols;
  if (symbols === undefined) return null;
  if (channel !== 'prices') {
    throw new ServerError('invalid_message', `subscribe(): symbols applies to prices only, not ${channel}`, {
      channel,
    });
  }
  const parsed = parseSymbolList(symbols);
  if (!parsed.ok) throw new ServerError('invalid_message', `subscribe(): ${parsed.message}`, { channel });
  return new Set(parsed.symbols);
}

/** The subscribe request of `channel` for `entries`; on `prices`, the union of their symbols. */
function subscribeRequest(
  channel: Channel,
  entries: readonly SubscriptionEntry[],
  since: number | undefined,
): SubscribeRequest {
  const request: SubscribeRequest =
    since === undefined ? { type: 'subscribe', channel } : { type: 'subscribe', channel, since };
  if (channel === 'prices') {
    const symbols = unionOf(entries.map((entry) => entry.symbols));
    if (symbols !== null) request.symbols = symbols;
  }
  return request;
}

function checkedUserId(reply: AuthOkMessage): number {
  if (typeof reply.userId !== 'number' || !Number.isSafeInteger(reply.userId) || reply.userId <= 0) {
    throw new ServerError('invalid_message', 'auth_ok without a valid userId');
  }
  return reply.userId;
}

function closeQuietly(socket: SocketLike, code: number, reason: string): void {
  try {
    socket.close(code, reason);
  } catch {
    // Already closing or closed: nothing left to release.
  }
}
