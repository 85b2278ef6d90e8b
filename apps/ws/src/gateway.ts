import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type ServerOptions } from 'ws';
import { Registry } from 'prom-client';
import { DESIGN_CHANNEL_LAYOUT, type Broker, type ChannelLayout } from '@repo/broker';
import { createClientAddress, createMetricsAccess } from '@repo/http-access';
import type { PortfolioUpdateEvent } from '@repo/events';
import { silentLogger, type Logger } from '@repo/log';
import { CLOSE_CODES, type Channel } from '@repo/protocol';
import { latestValues } from './broker-contract.ts';
import { BrokerFeed } from './broker-feed.ts';
import type { GatewayNode } from './cluster/gateway-node.ts';
import { ConnectionLedger } from './connection-ledger.ts';
import { createHttpHandler, rejectUpgrade, type HealthReport } from './http-routes.ts';
import { resolveLimits, type GatewayLimits } from './limits.ts';
import { GatewayMetrics } from './metrics.ts';
import { Authenticator } from './session/authenticator.ts';
import { ClientSession } from './session/client-session.ts';
import { RequestHandler } from './session/requests.ts';
import { SessionRecheck } from './session/session-recheck.ts';
import { SessionRegistry } from './session/session-registry.ts';
import type { SessionVerifier } from './session/session.ts';
import { HistoryReader, resolveHistoryReadLimits, type HistoryReadLimits } from './streams/history-reader.ts';
import type { OrderHistory } from './streams/order-history.ts';
import { OrderChannel } from './streams/order-channel.ts';
import { PortfolioChannel } from './streams/portfolio-channel.ts';
import { PriceChannel } from './streams/price-channel.ts';
import type { ChannelDeps, ChannelKind } from './streams/stream.ts';
import { ThrottledWarning } from './throttled-warning.ts';
import { Connection, GatewaySocket, type ConnectionDeps } from './transport/connection.ts';
import { Heartbeat } from './transport/heartbeat.ts';
import { MessageRateLimiter } from './transport/rate-limiter.ts';
import { WriteBatcher } from './transport/text-frame.ts';
import { UpgradeGuard, type Admission } from './upgrade-guard.ts';

export interface GatewayOptions {
  broker: Broker;
  sessions: SessionVerifier;
  logger?: Logger;
  /**
   * The configured symbols (default ['SOL']): their latest price is in every `prices` snapshot
   * (plus any symbol seen live), and they are the only ones `subscribe prices` may name in
   * `symbols` (others get `unknown_symbol`).
   */
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
   * Addresses and CIDR blocks the per-address limits (`upgradesPerAddress`,
   * `maxConnectionsPerAddress`) do not apply to (`WS_LIMIT_EXEMPT`). Default none, loopback
   * included: local load tests list `127.0.0.1` here; a local reverse proxy belongs in
   * `trustProxy` instead, so that its clients are still told apart.
   */
  limitExempt?: string[];
  /**
   * Reverse proxies (addresses and CIDR blocks, `TRUST_PROXY`) whose `X-Forwarded-For` names
   * the client: for a request from one of them, the client is the first address from the
   * right of that header that is not a trusted proxy. Every per-address limit and the
   * `/metrics` loopback rule use that address. Default none: the client is the TCP peer and
   * the header is ignored.
   */
  trustProxy?: string[];
  /**
   * `/metrics` then needs `Authorization: Bearer <token>` from every client (`METRICS_TOKEN`,
   * 16-256 visible ASCII characters); unset, it answers loopback clients only (403 otherwise).
   */
  metricsToken?: string;
  /**
   * The users' order-event history: replays `subscribe orders since`, fills gaps in live
   * delivery, catches up after a broker outage. Without it `since` is ignored and `subscribed`
   * carries no `seq`.
   */
  history?: OrderHistory;
  /** Overrides of the history read limits: page size and bytes, concurrent and waiting reads, timeout. */
  historyLimits?: Partial<HistoryReadLimits>;
  /**
   * Which broker channels carry which events; the publishers' layout (default the design's
   * channels). With `partitionedChannelLayout` (Redis Cluster) the gateway subscribes to a user
   * partition only while it has an authenticated socket of one of its users, and to the
   * prices of `symbols` only.
   */
  channelLayout?: ChannelLayout;
  /**
   * The node this gateway is one worker of (`WS_WORKERS` > 1): the connection limits are then
   * counted by the node's primary, and `/health` and `/metrics` answer for every worker.
   * Unset, this process is the node.
   */
  node?: GatewayNode;
}

export interface Gateway {
  /**
   * Listens on `port` (0 = any free port) and resolves with the bound port. A worker of a
   * gateway node (`node` given) listens on nothing: it serves the sockets the node's primary
   * hands it, and resolves with `port` as given.
   */
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

/**
 * Creates the WebSocket gateway: an HTTP server (health, metrics, upgrades) whose sockets
 * speak the protocol of docs/protocol.md, fed by the broker. This function only wires the
 * parts together: each socket is a transport (`Connection`) with a session (`ClientSession`)
 * that owns one stream per subscribed channel; each channel kind routes its broker messages.
 */
export async function createGateway(options: GatewayOptions): Promise<Gateway> {
  const limits = resolveLimits(options.limits);
  const historyLimits = resolveHistoryReadLimits(options.historyLimits);
  const { broker } = options;
  const logger = (options.logger ?? silentLogger).child({ component: 'ws-gateway' });
  const registry = options.registry ?? new Registry();
  const clientAddress = createClientAddress(options.trustProxy ?? []);
  const metricsAccess = createMetricsAccess(options.metricsToken);
  const connections = new Set<Connection>();
  const metrics: GatewayMetrics = new GatewayMetrics(registry, {
    connections: () => connections.size,
    brokerUp: () => broker.isUp(),
    partitions: () => feed.subscribedPartitions().length,
  });
  const deps: ChannelDeps = {
    limits,
    metrics,
    logger,
    malformedWarning: new ThrottledWarning(logger),
    // While the database or Redis is down every auth and snapshot fails: one line per interval.
    dependencyWarning: new ThrottledWarning(logger),
  };

  // ---- channels and sessions --------------------------------------------------------------

  const latest = latestValues(broker);
  const history = options.history ? new HistoryReader(options.history, historyLimits) : null;
  const symbols = options.symbols ?? ['SOL'];
  const kinds: ChannelKind[] = [
    new PriceChannel({ ...deps, symbols, readStored: latest.prices }),
    new OrderChannel({ ...deps, history }),
    new PortfolioChannel({ ...deps, readStored: latest.portfolio, loadPortfolio: options.loadPortfolio }),
  ];
  const sessionRegistry = new SessionRegistry<ClientSession>(deps);
  const { sessions } = options;
  const recheck = new SessionRecheck({
    registry: sessionRegistry,
    check: sessions.check ? (ids) => sessions.check!(ids) : null,
    intervalMs: limits.sessionRecheckIntervalMs,
    timeoutMs: limits.authTimeoutMs,
    logger,
    dependencyWarning: deps.dependencyWarning,
  });
  // Private events wait for the session re-check after a broker outage (see SessionRecheck).
  const routes = kinds.flatMap((kind) => (kind.needsAuth ? kind.routes.map((r) => recheck.gate(r)) : kind.routes));
  const stopPauses = broker.onStatusChange((up) => {
    if (!up) recheck.paused();
  });
  // Subscribed before any socket is served: the sessions hold and release its partitions.
  const feed: BrokerFeed = await BrokerFeed.start(broker, [...routes, sessionRegistry.route], {
    layout: options.channelLayout ?? DESIGN_CHANNEL_LAYOUT,
    symbols,
    metrics,
    logger,
    onResumed: () =>
      recheck.resumed(() => {
        for (const kind of kinds) void kind.resumed?.();
      }),
  }).catch((err: unknown) => {
    stopPauses();
    throw err;
  });
  const requests = new RequestHandler({
    logger,
    partitions: feed,
    authenticator: new Authenticator({
      verifier: options.sessions,
      timeoutMs: limits.authTimeoutMs,
      concurrency: limits.authConcurrency,
      maxWaiting: limits.maxAuthWaiting,
      wasRevoked: (sessionId, nowMs) => sessionRegistry.wasRevoked(sessionId, nowMs),
      dependencyWarning: deps.dependencyWarning,
      metrics,
    }),
  });
  const sessionDeps = {
    channels: new Map<Channel, ChannelKind>(kinds.map((kind) => [kind.channel, kind])),
    registry: sessionRegistry,
    partitions: feed,
    requests,
    maxSubscriptions: limits.maxSubscriptions,
  };

  // ---- sockets ----------------------------------------------------------------------------

  const heartbeat = new Heartbeat(limits.pingIntervalMs, limits.pongTimeoutMs);
  let nextConnectionId = 0;
  let closing: Promise<void> | null = null;
  /** Resolves the shutdown's wait once the last socket closed. */
  let lastClosed: (() => void) | null = null;
  const transportDeps: ConnectionDeps = {
    limits,
    metrics,
    logger,
    batcher: new WriteBatcher(),
    rate: new MessageRateLimiter(limits.messagesPerWindow, limits.rateWindowMs, limits.floodCloseAfter),
    onClosed(connection) {
      connections.delete(connection);
      heartbeat.delete(connection);
      if (closing && connections.size === 0) lastClosed?.();
    },
  };

  function onConnection(ws: GatewaySocket, socket: Duplex, admission: Admission): void {
    // ws listens for the socket's errors from here on.
    socket.off('error', ignoreError);
    const connection = new Connection((nextConnectionId += 1), ws, socket, transportDeps, admission.addressKey);
    connection.serve(new ClientSession(connection, sessionDeps));
    connections.add(connection);
    heartbeat.add(connection);
    logger.debug({ connection: connection.id }, 'socket opened');
  }

  const wss = new WebSocketServer({
    noServer: true,
    clientTracking: false,
    maxPayload: limits.maxPayloadBytes,
    // Off: deflate would cost CPU per recipient (no shared compressed frame) and would make
    // ws queue writes asynchronously, breaking the frame order our direct writes rely on.
    perMessageDeflate: false,
    // ws destroys a closing socket after this time: the longest a close may take, which only a
    // slow consumer is given whole; other closes are cut at closeGraceMs (see Connection.closing).
    closeTimeout: limits.slowConsumerDrainMs,
    // Events go straight to the connection, pings are answered by it: see GatewaySocket.
    WebSocket: GatewaySocket,
    autoPong: false,
  } as ServerOptions<typeof GatewaySocket> & { closeTimeout: number });

  const guard = new UpgradeGuard({
    limits,
    allowedOrigins: options.allowedOrigins ?? null,
    exempt: options.limitExempt ?? [],
    clientAddress,
    ledger:
      options.node?.ledger ??
      new ConnectionLedger({
        upgradesPerAddress: limits.upgradesPerAddress,
        upgradeWindowMs: limits.upgradeWindowMs,
        maxConnectionsPerAddress: limits.maxConnectionsPerAddress,
        maxConnections: limits.maxConnections,
      }),
    logger,
  });

  function upgradeAdmitted(req: IncomingMessage, socket: Duplex, head: Buffer, admission: Admission): void {
    // The slot is held until the socket is gone, whether its handshake fails or it served for hours.
    // One shared listener finds it on the socket: `once` with a closure would keep a wrapper, a
    // bound function and a closure alive on every socket for its whole life.
    (socket as AdmittedSocket)[ADMISSION] = admission;
    socket.on('close', releaseAdmission);
    if (socket.destroyed) {
      // Gone while the node's primary was answering.
      admission.release();
      return;
    }
    if (closing !== null) {
      admission.release();
      rejectUpgrade(socket, 503, 'server shutting down');
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => onConnection(ws, socket, admission));
  }

  function onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    // A reset during the handshake must not become an uncaught 'error'. One shared function, not
    // a closure per socket, removed once ws has its own listener.
    socket.on('error', ignoreError);
    const admission = guard.admit(req, socket, closing !== null);
    if (admission === null) return;
    if (admission instanceof Promise) {
      void admission.then((admitted) => {
        if (admitted !== null) upgradeAdmitted(req, socket, head, admitted);
      });
    } else upgradeAdmitted(req, socket, head, admission);
  }

  const ownHealth = (): HealthReport => {
    const up = broker.isUp();
    return { status: up ? 'ok' : 'degraded', broker: up ? 'up' : 'down', connections: connections.size };
  };
  const { node } = options;
  const health = node
    ? async (): Promise<HealthReport> => {
        const own = ownHealth();
        // The primary is gone only while the node is going down: answer for this worker alone.
        const whole = await node.health().catch(() => null);
        if (whole === null) return own;
        return {
          ...own,
          connections: whole.connections,
          workers: whole.workers,
          worker: { id: node.workerId, connections: own.connections },
        };
      }
    : ownHealth;
  const server = createServer(
    {
      // A socket that never completes its upgrade request holds a file descriptor: cut it off.
      headersTimeout: limits.handshakeTimeoutMs,
      requestTimeout: limits.handshakeTimeoutMs,
      connectionsCheckingInterval: Math.min(1000, limits.handshakeTimeoutMs),
    },
    createHttpHandler({
      health,
      metrics: node
        ? async () => ({ contentType: registry.contentType, text: await node.metrics() })
        : async () => ({ contentType: registry.contentType, text: await registry.metrics() }),
      logger,
      metricsAccess,
      clientAddress,
    }),
  );
  server.on('upgrade', onUpgrade);

  heartbeat.start();
  recheck.start();

  // ---- lifecycle --------------------------------------------------------------------------

  async function shutdown(): Promise<void> {
    heartbeat.stop();
    recheck.stop();
    stopPauses();
    const serverClosed = new Promise<void>((resolve) => server.close(() => resolve()));
    await feed.close();
    const everySocketClosed = new Promise<void>((resolve) => {
      lastClosed = resolve;
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
      const node = options.node;
      if (node) {
        // Node's HTTP server starts checking the handshake timeouts (headersTimeout,
        // requestTimeout) on 'listening'; a worker's server gets sockets without listening.
        server.emit('listening');
        node.accept((socket) => {
          if (closing !== null) socket.destroy();
          else server.emit('connection', socket);
        });
        return Promise.resolve(port);
      }
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

function ignoreError(): void {}

/** Where an upgraded socket keeps the connection slot it holds (see `upgradeAdmitted`). */
const ADMISSION = Symbol('tradewire.admission');
type AdmittedSocket = Duplex & { [ADMISSION]?: Admission };

/** A socket's 'close' listener, shared by every socket: gives its slot back. */
function releaseAdmission(this: AdmittedSocket): void {
  this[ADMISSION]?.release();
}
