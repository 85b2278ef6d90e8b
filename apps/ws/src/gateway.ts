import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type ServerOptions, type WebSocket } from 'ws';
import { Registry } from 'prom-client';
import type { Broker, Unsubscribe } from '@repo/broker';
import {
  createPriceStore,
  decodeEvent,
  EVENT_KINDS,
  portfolioKey,
  type PortfolioUpdateEvent,
  type PriceStore,
  type PriceUpdateEvent,
} from '@repo/events';
import { silentLogger, type Logger } from '@repo/log';
import {
  CLOSE_CODES,
  type Channel,
  type ClientMessage,
  type ErrorCode,
  type ReplyMessage,
  type RequestId,
} from '@repo/protocol';
import { redisKeys } from '@repo/redis';
import { ClientConnection, type BufferedEvent, type ConnectionContext } from './transport/connection.ts';
import type { ParsedClientMessage } from './transport/client-messages.ts';
import { EventFanout } from './event-fanout.ts';
import { Heartbeat } from './transport/heartbeat.ts';
import { createHttpHandler, rejectUpgrade, type HealthReport } from './http-routes.ts';
import { AddressRateLimiter } from './address-rate-limiter.ts';
import { resolveLimits, type GatewayLimits } from './limits.ts';
import { HistoryReader, defaultHistoryReadLimits, type HistoryReadLimits } from './streams/history-reader.ts';
import { GatewayMetrics } from './metrics.ts';
import { decodeHistoryEvent, type OrderHistory, type OrderHistoryPage } from './streams/order-history.ts';
import { PriceCache } from './streams/price-cache.ts';
import { decodeSessionRevoked, isUsableSession, RecentRevocations, type SessionVerifier } from './session/session.ts';
import { SubscriberIndex } from './streams/subscriber-index.ts';
import { encodeTextFrame, WriteBatcher } from './transport/text-frame.ts';
import { ThrottledWarning } from './throttled-warning.ts';
import { withTimeout } from '@repo/retry';

export interface GatewayOptions {
  broker: Broker;
  sessions: SessionVerifier;
  logger?: Logger;
  /** Symbols whose latest price is sent as snapshot (default ['SOL']); plus any seen live. */
  symbols?: string[];
  /**
   * Origin allow-list for upgrades; null/undefined = allow all (tests). Requests without an
   * Origin header (non-browser clients) are allowed: the check exists to stop hostile pages.
   */
  allowedOrigins?: string[] | null;
  /** Snapshot fallback when the broker's latest-value store has no portfolio for the user. */
  loadPortfolio?: (userId: number) => Promise<PortfolioUpdateEvent | null>;
  /** Overrides of `defaultLimits()`. */
  limits?: Partial<GatewayLimits>;
  /** Where the metrics go; default a fresh Registry per gateway (so tests can make many). */
  registry?: Registry;
  /**
   * Addresses the per-address upgrade limit (`upgradesPerAddress`) does not apply to. Default
   * loopback (`127.0.0.1`, `::1`): there the peer is a local reverse proxy or tool speaking for
   * many clients, and the limit belongs in the proxy. Pass `[]` to limit loopback too.
   */
  upgradeLimitExempt?: string[];
  /**
   * The users' order-event history (issue 5): replays `subscribe orders since`, fills gaps in
   * live delivery, catches up after a broker outage. Without it `since` is ignored and
   * `subscribed` carries no `seq`.
   */
  history?: OrderHistory;
  /** Overrides of `defaultHistoryReadLimits()`: page size and bytes, concurrent reads, timeout. */
  historyLimits?: Partial<HistoryReadLimits>;
}

export interface Gateway {
  /** Listens on `port` (0 = any free port) and resolves with the bound port. */
  listen(port: number, host?: string): Promise<number>;
  /**
   * Graceful shutdown: stop accepting, close sockets with 1001, unsubscribe from the broker.
   * Sockets that do not answer the close within `closeGraceMs` are destroyed. Does NOT close
   * the broker: the caller owns it.
   */
  close(): Promise<void>;
  readonly server: Server;
  connectionCount(): number;
}

const PRIVATE_CHANNELS = ['orders', 'portfolio'] as const;

/**
 * Creates the WebSocket gateway: an HTTP server (health, metrics, upgrades) whose sockets
 * speak the protocol of docs/protocol.md, fed by the broker. Subscribes to each broker channel
 * once, here, however many clients come.
 */
export async function createGateway(options: GatewayOptions): Promise<Gateway> {
  const limits = resolveLimits(options.limits);
  const { broker, sessions } = options;
  const logger = (options.logger ?? silentLogger).child({ component: 'ws-gateway' });
  const allowedOrigins = options.allowedOrigins ? new Set(options.allowedOrigins) : null;
  const registry = options.registry ?? new Registry();
  const priceStore: PriceStore = createPriceStore(broker);
  const prices = new PriceCache(options.symbols ?? ['SOL'], limits.maxSymbols);
  const index = new SubscriberIndex<ClientConnection>();
  const connections = new Set<ClientConnection>();
  const heartbeat = new Heartbeat(limits.pingIntervalMs, limits.pongTimeoutMs);
  const revocations = new RecentRevocations();
  const upgradeAttempts = new AddressRateLimiter({
    limit: limits.upgradesPerAddress,
    windowMs: limits.upgradeWindowMs,
    exempt: options.upgradeLimitExempt ?? ['127.0.0.1', '::1'],
  });
  const malformedWarning = new ThrottledWarning(logger);
  // Refused upgrades can come in floods (a hostile page, a reconnect storm): throttle their logs too.
  const refusalWarning = new ThrottledWarning(logger);
  // While the database or Redis is down every auth and snapshot fails: one line per interval.
  const dependencyWarning = new ThrottledWarning(logger);
  const metrics = new GatewayMetrics(registry, {
    connections: () => connections.size,
    brokerUp: () => broker.isUp(),
  });
  let nextConnectionId = 0;
  let closing: Promise<void> | null = null;
  const historyReader = options.history
    ? new HistoryReader(options.history, { ...defaultHistoryReadLimits(), ...definedOnly(options.historyLimits ?? {}) })
    : null;

  // ---- subscriptions ----------------------------------------------------------------------

  function addSubscription(connection: ClientConnection, channel: Channel): boolean {
    if (!index.add(channel, connection, channel === 'prices' ? null : connection.userId)) return false;
    connection.channels.add(channel);
    metrics.subscribed(channel);
    return true;
  }

  function removeSubscription(connection: ClientConnection, channel: Channel): void {
    connection.cancelPending(channel);
    // A later subscription starts its own stream: no position, no held events, no catch-up.
    if (channel === 'orders') connection.resetOrders();
    if (channel === 'portfolio') connection.portfolioVersion = null;
    if (!connection.channels.delete(channel)) return;
    index.remove(channel, connection, channel === 'prices' ? null : connection.userId);
    metrics.unsubscribed(channel);
  }

  /** Ends a socket's authentication (revocation, expiry): private subscriptions go, prices stay. */
  function endAuthentication(connection: ClientConnection, code: 'session_revoked' | 'session_expired'): void {
    for (const channel of PRIVATE_CHANNELS) removeSubscription(connection, channel);
    if (connection.session) index.removeSession(connection.session.sessionId, connection);
    connection.clearExpiry();
    connection.userId = null;
    connection.session = null;
    connection.sendMessage({
      type: 'error',
      code,
      message:
        code === 'session_revoked'
          ? 'your session was revoked (logged out); authenticate again'
          : 'your session expired; authenticate again',
    });
  }

  // ---- requests ---------------------------------------------------------------------------

  function reply(connection: ClientConnection, request: { id?: RequestId }, message: ReplyMessage): void {
    connection.sendMessage(request.id === undefined ? message : { ...message, id: request.id });
  }

  function replyError(
    connection: ClientConnection,
    request: { id?: RequestId },
    code: ErrorCode,
    message: string,
  ): void {
    reply(connection, request, { type: 'error', code, message });
  }

  function onRequest(connection: ClientConnection, parsed: ParsedClientMessage): void | Promise<void> {
    if (!parsed.ok) return replyError(connection, parsed, parsed.code, parsed.message);
    const request: ClientMessage = parsed.message;
    switch (request.type) {
      case 'ping':
        return reply(connection, request, { type: 'pong' });
      case 'auth':
        return authenticate(connection, request);
      case 'subscribe':
        return subscribe(connection, request);
      case 'unsubscribe':
        removeSubscription(connection, request.channel);
        return reply(connection, request, { type: 'unsubscribed', channel: request.channel });
    }
  }

  async function authenticate(connection: ClientConnection, request: { token: string; id?: RequestId }): Promise<void> {
    let session: unknown;
    try {
      session = await withTimeout(sessions.verify(request.token), limits.authTimeoutMs, 'session verification');
    } catch (err) {
      if (!connection.isOpen) return;
      dependencyWarning.warn({ err: (err as Error).message }, 'session verification failed');
      return replyError(connection, request, 'internal_error', 'authentication is unavailable right now; retry');
    }
    if (!connection.isOpen) return;
    const now = Date.now();
    if (
      !isUsableSession(session) ||
      (session.expiresAt && session.expiresAt.getTime() <= now) ||
      revocations.has(session.sessionId, now)
    ) {
      // A failed attempt changes nothing: an earlier authentication stays as it was.
      return replyError(connection, request, 'auth_failed', 'invalid or expired token');
    }
    if (connection.userId !== null && connection.userId !== session.userId) {
      // Another user's subscriptions must not carry over to this one.
      for (const channel of PRIVATE_CHANNELS) removeSubscription(connection, channel);
    }
    if (connection.session) index.removeSession(connection.session.sessionId, connection);
    connection.userId = session.userId;
    connection.session = session;
    index.addSession(session.sessionId, connection);
    if (session.expiresAt)
      connection.armExpiry(session.expiresAt, () => endAuthentication(connection, 'session_expired'));
    else connection.clearExpiry();
    reply(connection, request, { type: 'auth_ok', userId: session.userId });
  }

  function subscribe(
    connection: ClientConnection,
    request: { channel: Channel; since?: number; id?: RequestId },
  ): void | Promise<void> {
    const { channel } = request;
    if (channel !== 'prices' && connection.userId === null) {
      return replyError(connection, request, 'auth_required', `authenticate before subscribing to ${channel}`);
    }
    if (!connection.channels.has(channel) && connection.channels.size >= limits.maxSubscriptions) {
      return replyError(
        connection,
        request,
        'too_many_subscriptions',
        `at most ${limits.maxSubscriptions} subscriptions per socket`,
      );
    }
    if (channel === 'orders') return subscribeOrders(connection, request, connection.userId!);
    // Live events are indexed (and held) from now on, so none is lost while the snapshot is read.
    addSubscription(connection, channel);
    connection.beginPending(channel);
    return channel === 'prices'
      ? completePricesSubscription(connection, request)
      : completePortfolioSubscription(connection, request, connection.userId!);
  }

  // ---- orders: replay, gap fill, catch-up (issue 5) ------------------------------------------

  /**
   * `subscribe orders [since]`. Live events are indexed and held from now on; the history is
   * read; the reply says where the stream stands (`seq`) and, with `since`, whether the
   * history still reaches back to it (`recovered`); then the replay, then the held live
   * events past it, then live. A socket never gets a `seq` twice or out of order.
   */
  async function subscribeOrders(
    connection: ClientConnection,
    request: { since?: number; id?: RequestId },
    userId: number,
  ): Promise<void> {
    if (!addSubscription(connection, 'orders')) connection.resetOrders(); // subscribing again restarts the stream
    if (!historyReader) {
      reply(connection, request, { type: 'subscribed', channel: 'orders' });
      return;
    }
    const epoch = connection.orderEpoch;
    connection.holdOrders();
    const { since } = request;
    let page: OrderHistoryPage;
    try {
      // Without `since` only the latest seq is needed: read past every event.
      page = await historyReader.read(userId, since ?? Number.MAX_SAFE_INTEGER);
    } catch (err) {
      if (!isCurrentStream(connection, userId, epoch)) return;
      dependencyWarning.warn({ err: (err as Error).message }, 'order history read failed');
      if (since === undefined) {
        // A fresh subscription can start without knowing the position: the first event sets it.
        reply(connection, request, { type: 'subscribed', channel: 'orders' });
        flushHeldOrders(connection);
        return;
      }
      removeSubscription(connection, 'orders');
      return replyError(connection, request, 'internal_error', 'order history is unavailable right now; retry');
    }
    if (!isCurrentStream(connection, userId, epoch)) return;
    const latestSeq = page.latestSeq;
    if (since === undefined) {
      connection.orderSeq = latestSeq;
      reply(connection, request, { type: 'subscribed', channel: 'orders', seq: latestSeq });
      return catchUp(connection, userId, epoch, null);
    }
    const recovered =
      since === latestSeq || (since < latestSeq && page.oldestSeq !== null && page.oldestSeq <= since + 1);
    reply(connection, request, { type: 'subscribed', channel: 'orders', recovered, seq: latestSeq });
    if (!recovered) {
      // The client reloads over REST, which shows everything up to `latestSeq`; live goes on from there.
      connection.orderSeq = latestSeq;
      return catchUp(connection, userId, epoch, null);
    }
    connection.orderSeq = since;
    return catchUp(connection, userId, epoch, page);
  }

  function isCurrentStream(connection: ClientConnection, userId: number, epoch: number): boolean {
    return (
      connection.isOpen &&
      connection.userId === userId &&
      connection.orderEpoch === epoch &&
      connection.channels.has('orders')
    );
  }

  /**
   * Brings a socket's order stream up to date while its live events are held: writes `page`
   * (and the pages after it), then the held events in `seq` order. A held event past
   * `orderSeq + 1` means events were lost between the relay and this gateway (a broker that
   * died after accepting them): those are read from history too. When the history no longer
   * holds them, or cannot be read, the socket is closed (1011): the client reconnects with
   * `since` and gets `recovered:false`, so it reloads over REST rather than miss anything.
   */
  async function catchUp(
    connection: ClientConnection,
    userId: number,
    epoch: number,
    first: OrderHistoryPage | 'read' | null,
  ): Promise<void> {
    try {
      let page = first === 'read' ? await historyReader!.read(userId, connection.orderSeq ?? 0) : first;
      if (!isCurrentStream(connection, userId, epoch)) return;
      for (;;) {
        if (page) {
          if (!writeHistory(connection, userId, page))
            return giveUpStream(connection, 'history no longer reaches the gap');
          if (page.truncated) {
            await connection.whenDrained();
            if (!isCurrentStream(connection, userId, epoch)) return;
            page = await historyReader!.read(userId, connection.orderSeq ?? 0);
            if (!isCurrentStream(connection, userId, epoch)) return;
            continue;
          }
        }
        if (flushHeldOrders(connection)) return;
        // A gap remains: the missing events were committed after the page's snapshot.
        if (page && page.events.length === 0 && page.latestSeq <= (connection.orderSeq ?? 0)) {
          return giveUpStream(connection, 'an order event is missing from the history');
        }
        page = await historyReader!.read(userId, connection.orderSeq ?? 0);
        if (!isCurrentStream(connection, userId, epoch)) return;
      }
    } catch (err) {
      if (!isCurrentStream(connection, userId, epoch)) return;
      dependencyWarning.warn({ err: (err as Error).message }, 'order history read failed during catch-up');
      giveUpStream(connection, 'order history unavailable');
    }
  }

  /** Writes a history page past the socket's position; false when it does not connect to it. */
  function writeHistory(connection: ClientConnection, userId: number, page: OrderHistoryPage): boolean {
    for (const item of page.events) {
      const position = connection.orderSeq ?? 0;
      if (item.seq <= position) continue;
      if (item.seq !== position + 1) return false;
      const decoded = decodeHistoryEvent(item, userId);
      if (!decoded) {
        // Skipping it would be a silent loss: the client resyncs over REST instead.
        metrics.dropped('malformed');
        malformedWarning.warn({ userId, seq: item.seq }, 'dropped malformed history event');
        return false;
      }
      const frame = encodeTextFrame(JSON.stringify({ type: decoded.kind, ...decoded.event }));
      if (!connection.sendOrderFrame(frame, item.seq)) return true; // closed meanwhile; nothing more to do
      metrics.delivered(decoded.kind);
    }
    return true;
  }

  /**
   * Writes the held live events that follow the position and delivers live again; true when
   * done, false when a gap remains (the events past it stay held).
   */
  function flushHeldOrders(connection: ClientConnection): boolean {
    const held = connection.takeHeldOrders();
    for (let i = 0; i < held.length; i++) {
      const { frame, seq } = held[i]!;
      const position = connection.orderSeq;
      if (seq !== undefined && position !== null) {
        if (seq <= position) {
          metrics.dropped('duplicate');
          continue;
        }
        if (seq > position + 1) {
          connection.reholdOrders(held.slice(i));
          return false;
        }
      }
      if (!connection.sendOrderFrame(frame, seq)) break;
    }
    connection.releaseOrders();
    return true;
  }

  function giveUpStream(connection: ClientConnection, why: string): void {
    logger.warn(
      { connection: connection.id, userId: connection.userId, why },
      'order stream cannot continue; closing so the client resubscribes',
    );
    connection.resetOrders();
    connection.close(1011, 'order history unavailable; resubscribe', 'history_unavailable');
  }

  /** A live event revealed a gap on this socket: fill it from history. */
  function onOrderGap(connection: ClientConnection): void {
    if (!historyReader || connection.userId === null) {
      // Nothing to fill it from: deliver as it comes, as before issue 5.
      for (const { frame, seq } of connection.takeHeldOrders()) connection.sendOrderFrame(frame, seq);
      connection.releaseOrders();
      return;
    }
    void catchUp(connection, connection.userId, connection.orderEpoch, null);
  }

  /**
   * After a broker outage events may have been published while this gateway was not
   * subscribed: every socket with an `orders` subscription checks the history (one merged
   * read per user and position) and gets what it missed.
   */
  function catchUpAll(): void {
    if (!historyReader) return;
    for (const userId of [...index.users('orders')]) {
      for (const connection of [...index.ofUser('orders', userId)]) {
        if (connection.holdingOrders || connection.orderSeq === null) continue; // a catch-up is already running
        connection.holdOrders();
        void catchUp(connection, userId, connection.orderEpoch, 'read');
      }
    }
  }

  /**
   * One read of the stored prices shared by every subscription that starts while it is in
   * flight: a reconnect storm of thousands of clients costs one MGET, not thousands.
   */
  let storedPricesRead: Promise<PriceUpdateEvent[]> | null = null;
  function readStoredPrices(): Promise<PriceUpdateEvent[]> {
    storedPricesRead ??= withTimeout(priceStore.getPrices(prices.symbols()), limits.snapshotTimeoutMs, 'price snapshot')
      .catch((err: unknown) => {
        dependencyWarning.warn({ err: (err as Error).message }, 'price snapshot read failed; using live cache only');
        return [];
      })
      .finally(() => {
        storedPricesRead = null;
      });
    return storedPricesRead;
  }

  async function completePricesSubscription(connection: ClientConnection, request: { id?: RequestId }): Promise<void> {
    const stored = await readStoredPrices();
    const held = connection.endPending('prices');
    if (held === null || !connection.isOpen) return;
    reply(connection, request, { type: 'subscribed', channel: 'prices' });
    const storedBySymbol = new Map(stored.map((event) => [event.symbol, event]));
    const heldSymbols = new Set(held.map((b) => b.event.symbol));
    // Read now, not before the await: a symbol first seen live meanwhile is in the cache.
    const symbols = new Set([...prices.symbols(), ...storedBySymbol.keys()]);
    let sent = 0;
    for (const symbol of symbols) {
      // A tick that arrived during the read is live and at least as new: it follows below.
      if (heldSymbols.has(symbol)) continue;
      const frame = snapshotPriceFrame(storedBySymbol.get(symbol), prices.get(symbol));
      if (frame && connection.sendFrame(frame)) sent += 1;
    }
    for (const buffered of held) if (connection.sendPrice(buffered.event.symbol!, buffered.frame)) sent += 1;
    metrics.delivered('price', sent);
  }

  async function completePortfolioSubscription(
    connection: ClientConnection,
    request: { id?: RequestId },
    userId: number,
  ): Promise<void> {
    const snapshot = await readPortfolio(userId);
    const held = connection.endPending('portfolio');
    if (!connection.isOpen) return;
    if (held === null) {
      // The session ended (revoked, expired) while the snapshot was being read.
      return replyError(connection, request, 'auth_required', 'authenticate before subscribing to portfolio');
    }
    reply(connection, request, { type: 'subscribed', channel: 'portfolio' });
    let sent = 0;
    if (snapshot && !held.some((b) => isAtLeastAsNew(b.event, snapshot))) {
      const frame = encodeTextFrame(JSON.stringify({ type: 'portfolio', ...snapshot }));
      if (connection.sendPortfolioFrame(frame, snapshot.version)) sent += 1;
    }
    // An older held portfolio than the snapshot is dropped here: versions never go backwards.
    for (const buffered of held) if (connection.sendPortfolioFrame(buffered.frame, buffered.event.version)) sent += 1;
    metrics.delivered('portfolio', sent);
  }

  /** The user's latest portfolio: the broker's latest-value store, else `loadPortfolio`, else null. */
  async function readPortfolio(userId: number): Promise<PortfolioUpdateEvent | null> {
    try {
      const raw = await withTimeout(
        broker.getLatest(portfolioKey(userId)),
        limits.snapshotTimeoutMs,
        'portfolio snapshot',
      );
      if (raw !== null) {
        const decoded = decodeEvent('portfolio', raw);
        if (decoded.ok && decoded.event.userId === userId) return decoded.event;
        metrics.dropped('malformed');
        malformedWarning.warn({ key: portfolioKey(userId) }, 'dropped malformed stored portfolio');
      }
    } catch (err) {
      dependencyWarning.warn({ err: (err as Error).message }, 'portfolio snapshot read failed');
    }
    if (!options.loadPortfolio) return null;
    try {
      const loaded = await withTimeout(options.loadPortfolio(userId), limits.snapshotTimeoutMs, 'portfolio load');
      if (loaded === null) return null;
      const parsed = EVENT_KINDS.portfolio.schema.safeParse(loaded);
      // Never hand a user a portfolio that is not theirs, whatever the loader returned.
      if (parsed.success && parsed.data.userId === userId) return parsed.data;
      logger.error({ userId }, 'loadPortfolio returned an invalid portfolio; no snapshot sent');
    } catch (err) {
      dependencyWarning.warn({ err: (err as Error).message }, 'loadPortfolio failed');
    }
    return null;
  }

  // ---- connections ------------------------------------------------------------------------

  const batcher = new WriteBatcher();
  /** Resolves the shutdown's wait once the last socket closed. */
  let allClosed: (() => void) | null = null;
  const context: ConnectionContext = {
    logger,
    limits,
    metrics,
    batcher,
    onRequest,
    onRequestError(connection, err) {
      logger.error({ err, connection: connection.id }, 'request handler failed');
      replyError(connection, {}, 'internal_error', 'internal error');
    },
    onClose(connection) {
      connections.delete(connection);
      heartbeat.delete(connection);
      for (const channel of [...connection.channels]) removeSubscription(connection, channel);
      if (connection.session) index.removeSession(connection.session.sessionId, connection);
      if (closing && connections.size === 0) allClosed?.();
    },
  };

  const wss = new WebSocketServer({
    noServer: true,
    clientTracking: false,
    maxPayload: limits.maxPayloadBytes,
    // Off: deflate would cost CPU per recipient (no shared compressed frame) and would make
    // ws queue writes asynchronously, breaking the frame order our direct writes rely on.
    perMessageDeflate: false,
    // ws destroys a socket that does not answer our close frame within this time.
    closeTimeout: limits.closeGraceMs,
  } as ServerOptions & { closeTimeout: number });

  function onConnection(ws: WebSocket, socket: Duplex): void {
    const connection = new ClientConnection((nextConnectionId += 1), ws, socket, context);
    connections.add(connection);
    heartbeat.add(connection);
    logger.debug({ connection: connection.id }, 'socket opened');
  }

  function onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    // A reset during the handshake must not become an uncaught 'error'.
    socket.on('error', () => {});
    if (closing) return rejectUpgrade(socket, 503, 'server shutting down');
    const origin = req.headers.origin;
    if (allowedOrigins && origin !== undefined && !allowedOrigins.has(origin)) {
      refusalWarning.warn({ reason: 'origin', origin: origin.slice(0, 200) }, 'upgrade refused: origin not allowed');
      return rejectUpgrade(socket, 403, 'origin not allowed');
    }
    const now = Date.now();
    if (!upgradeAttempts.take(req.socket.remoteAddress, now)) {
      refusalWarning.warn(
        { reason: 'address_rate', max: limits.upgradesPerAddress },
        'upgrade refused: too many attempts from one address',
      );
      return rejectUpgrade(
        socket,
        429,
        'too many connection attempts',
        Math.ceil(upgradeAttempts.retryAfterMs(now) / 1000) || 1,
      );
    }
    if (connections.size >= limits.maxConnections) {
      refusalWarning.warn(
        { reason: 'max_connections', max: limits.maxConnections },
        'upgrade refused: connection limit reached',
      );
      return rejectUpgrade(socket, 503, 'too many connections');
    }
    wss.handleUpgrade(req, socket, head, (ws) => onConnection(ws, socket));
  }

  const health = (): HealthReport => {
    const up = broker.isUp();
    return { status: up ? 'ok' : 'degraded', broker: up ? 'up' : 'down', connections: connections.size };
  };

  const server = createServer(
    {
      // A socket that never completes its upgrade request holds a file descriptor: cut it off.
      headersTimeout: limits.handshakeTimeoutMs,
      requestTimeout: limits.handshakeTimeoutMs,
      connectionsCheckingInterval: Math.min(1000, limits.handshakeTimeoutMs),
    },
    createHttpHandler({ health, registry, logger }),
  );
  server.on('upgrade', onUpgrade);

  // ---- broker -----------------------------------------------------------------------------

  const fanout = new EventFanout({ index, metrics, prices, malformedWarning, onOrderGap });
  const onSessionRevoked = (raw: string): void => {
    const decoded = decodeSessionRevoked(raw);
    if (!decoded) {
      metrics.dropped('malformed');
      malformedWarning.warn({ channel: redisKeys.CHANNELS.sessionRevoked() }, 'dropped malformed session revocation');
      return;
    }
    revocations.add(decoded.sessionId, Date.now());
    for (const connection of index.ofSession(decoded.sessionId)) endAuthentication(connection, 'session_revoked');
  };
  const unsubscribes: Unsubscribe[] = [];
  try {
    for (const { channel, handler } of fanout.handlers()) unsubscribes.push(await broker.subscribe(channel, handler));
    unsubscribes.push(await broker.subscribe(redisKeys.CHANNELS.sessionRevoked(), onSessionRevoked));
  } catch (err) {
    await Promise.allSettled(unsubscribes.map((unsubscribe) => unsubscribe()));
    throw err;
  }
  const stopStatusLog = broker.onStatusChange((up) => {
    logger.info({ up }, up ? 'broker up: catching up order streams' : 'broker down: live events paused');
    if (up) catchUpAll();
  });

  heartbeat.start();

  // ---- lifecycle --------------------------------------------------------------------------

  async function shutdown(): Promise<void> {
    heartbeat.stop();
    stopStatusLog();
    const serverClosed = new Promise<void>((resolve) => server.close(() => resolve()));
    await Promise.allSettled(unsubscribes.map((unsubscribe) => unsubscribe()));
    const everySocketClosed = new Promise<void>((resolve) => {
      allClosed = resolve;
      if (connections.size === 0) resolve();
    });
    for (const connection of connections) connection.close(CLOSE_CODES.goingAway, 'server shutting down', 'shutdown');
    // ws destroys non-answering sockets after closeGraceMs; this is the backstop.
    let backstop: NodeJS.Timeout | undefined;
    await Promise.race([
      everySocketClosed,
      new Promise<void>((resolve) => {
        backstop = setTimeout(resolve, limits.closeGraceMs + 250);
      }),
    ]);
    clearTimeout(backstop);
    for (const connection of connections) connection.terminate('shutdown');
    server.closeAllConnections();
    await serverClosed;
    logger.info('gateway closed');
  }

  return {
    server,
    connectionCount: () => connections.size,
    listen(port, host) {
      return new Promise<number>((resolve, reject) => {
        const onError = (err: Error) => reject(err);
        server.once('error', onError);
        server.listen(port, host, () => {
          server.off('error', onError);
          const address = server.address() as AddressInfo;
          logger.info({ port: address.port, host: address.address }, 'gateway listening');
          resolve(address.port);
        });
      });
    },
    close() {
      closing ??= shutdown();
      return closing;
    },
  };
}

/** The newer of the stored price and the gateway's last live tick, as a frame; ties go to the live one. */
function snapshotPriceFrame(
  stored: PriceUpdateEvent | undefined,
  live: { event: PriceUpdateEvent; frame: Buffer } | undefined,
): Buffer | null {
  if (live && (!stored || Date.parse(live.event.timestamp) >= Date.parse(stored.timestamp))) return live.frame;
  if (stored) return encodeTextFrame(JSON.stringify({ type: 'price', ...stored }));
  return null;
}

/** Whether a held live portfolio makes the snapshot redundant (by version when both have one). */
function isAtLeastAsNew(event: BufferedEvent['event'], snapshot: PortfolioUpdateEvent): boolean {
  if (event.version !== undefined && snapshot.version !== undefined) return event.version >= snapshot.version;
  return Date.parse(event.timestamp) >= Date.parse(snapshot.timestamp);
}

/** The entries of `values` that are set (so an explicit `undefined` keeps the default). */
function definedOnly<T extends object>(values: Partial<T>): Partial<T> {
  return Object.fromEntries(Object.entries(values).filter(([, v]) => v !== undefined)) as Partial<T>;
}
