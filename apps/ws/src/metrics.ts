import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { EVENT_KINDS, type EventKind } from '@repo/events';
import { CHANNELS, ERROR_CODES, type Channel, type ErrorCode } from '@repo/protocol';

/** Server message types counted in `tradewire_ws_messages_delivered_total`. */
const DELIVERED_TYPES = [
  'price',
  'order_filled',
  'order_rejected',
  'portfolio',
  'auth_ok',
  'subscribed',
  'unsubscribed',
  'pong',
  'error',
] as const;
export type DeliveredType = (typeof DELIVERED_TYPES)[number];

/** Why an event did not reach a socket. */
const DROP_REASONS = ['malformed', 'slow_consumer', 'duplicate', 'inconsistent'] as const;
type DropReason = (typeof DROP_REASONS)[number];

/** Why the gateway closed a socket itself. */
const DISCONNECT_REASONS = ['slow_consumer', 'flood', 'heartbeat', 'shutdown', 'history_unavailable'] as const;
export type DisconnectReason = (typeof DISCONNECT_REASONS)[number];

type Child<T> = { inc(value?: number): void } & T;

/**
 * The gateway's Prometheus metrics, in its own registry. Label children are resolved once
 * here, so counting on the hot path is a property read and an add, not a label hash.
 */
export class GatewayMetrics {
  readonly registry: Registry;
  readonly #delivered: Record<DeliveredType, Child<object>>;
  readonly #dropped: Record<DropReason, Child<object>>;
  readonly #clientErrors: Record<ErrorCode, Child<object>>;
  readonly #disconnects: Record<DisconnectReason, Child<object>>;
  readonly #subscriptions: Record<Channel, { inc(v?: number): void; dec(v?: number): void }>;
  /** Plain counts, read by the counter on scrape: every broker message passes here. */
  readonly #received: Record<EventKind, number>;
  readonly #latency: Histogram;
  /** Pending work, read when scraped: plain numbers, so changing them costs an add. */
  #pendingRequests = 0;
  #authInFlight = 0;
  #authWaiting = 0;

  constructor(
    registry: Registry,
    sources: { connections: () => number; brokerUp: () => boolean; partitions?: () => number },
  ) {
    this.registry = registry;
    new Gauge({
      name: 'tradewire_ws_connections',
      help: 'Open WebSocket connections',
      registers: [registry],
      collect() {
        this.set(sources.connections());
      },
    });
    new Gauge({
      name: 'tradewire_ws_broker_up',
      help: '1 while the broker (Redis) is up, 0 while down (on a node of several workers: every worker)',
      registers: [registry],
      // Summed over a node's workers it would read 2 for "up"; the lowest says whether all are.
      aggregator: 'min',
      collect() {
        this.set(sources.brokerUp() ? 1 : 0);
      },
    });
    const pending = (name: string, help: string, read: () => number) =>
      new Gauge({
        name,
        help,
        registers: [registry],
        collect() {
          this.set(read());
        },
      });
    pending(
      'tradewire_ws_requests_pending',
      'Client requests accepted and not yet answered, over all sockets (at most maxQueuedRequests per socket)',
      () => this.#pendingRequests,
    );
    pending(
      'tradewire_ws_auth_in_flight',
      'Token verifications waiting for the session store (at most authConcurrency)',
      () => this.#authInFlight,
    );
    pending(
      'tradewire_ws_auth_waiting',
      'Token verifications waiting for a free slot (at most maxAuthWaiting)',
      () => this.#authWaiting,
    );
    new Gauge({
      name: 'tradewire_ws_broker_partitions',
      help: 'User partitions whose private channels this process subscribes to (1 unless on a Redis Cluster)',
      registers: [registry],
      collect() {
        this.set(sources.partitions?.() ?? 1);
      },
    });
    const received = (this.#received = byLabel(Object.keys(EVENT_KINDS) as EventKind[], () => 0));
    new Counter({
      name: 'tradewire_ws_broker_messages_total',
      help: 'Messages received from the broker, per event kind, whether or not a local socket wanted them',
      labelNames: ['kind'],
      registers: [registry],
      collect() {
        this.reset();
        for (const [kind, count] of Object.entries(received)) this.inc({ kind }, count);
      },
    });
    const subscriptions = new Gauge({
      name: 'tradewire_ws_subscriptions',
      help: 'Socket subscriptions per channel',
      labelNames: ['channel'],
      registers: [registry],
    });
    const delivered = new Counter({
      name: 'tradewire_ws_messages_delivered_total',
      help: 'Messages written to client sockets, per server message type',
      labelNames: ['type'],
      registers: [registry],
    });
    const dropped = new Counter({
      name: 'tradewire_ws_events_dropped_total',
      help:
        'Broker events not delivered: malformed (dropped for everyone), slow_consumer or duplicate ' +
        '(per socket: an order event the socket already has), inconsistent (per socket: a portfolio ' +
        'reflecting an order event the history does not hold)',
      labelNames: ['reason'],
      registers: [registry],
    });
    const clientErrors = new Counter({
      name: 'tradewire_ws_client_errors_total',
      help: 'Error messages sent to clients, per code',
      labelNames: ['code'],
      registers: [registry],
    });
    const disconnects = new Counter({
      name: 'tradewire_ws_disconnects_total',
      help: 'Sockets the gateway closed itself, per reason',
      labelNames: ['reason'],
      registers: [registry],
    });
    this.#latency = new Histogram({
      name: 'tradewire_ws_event_latency_seconds',
      help: 'From the event timestamp to the moment the gateway wrote it to its recipients',
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers: [registry],
    });
    this.#subscriptions = byLabel(CHANNELS, (c) => subscriptions.labels(c));
    this.#delivered = byLabel(DELIVERED_TYPES, (t) => delivered.labels(t));
    this.#dropped = byLabel(DROP_REASONS, (r) => dropped.labels(r));
    this.#clientErrors = byLabel(ERROR_CODES, (c) => clientErrors.labels(c));
    this.#disconnects = byLabel(DISCONNECT_REASONS, (r) => disconnects.labels(r));
  }

  /** One message of `kind` arrived from the broker. */
  received(kind: EventKind): void {
    this.#received[kind] += 1;
  }

  delivered(type: DeliveredType, count = 1): void {
    if (count > 0) this.#delivered[type].inc(count);
  }

  dropped(reason: DropReason, count = 1): void {
    this.#dropped[reason].inc(count);
  }

  clientError(code: ErrorCode): void {
    this.#clientErrors[code].inc();
  }

  disconnected(reason: DisconnectReason): void {
    this.#disconnects[reason].inc();
  }

  subscribed(channel: Channel): void {
    this.#subscriptions[channel].inc();
  }

  unsubscribed(channel: Channel): void {
    this.#subscriptions[channel].dec();
  }

  /** `delta` requests were accepted (positive) or answered or dropped with their socket (negative). */
  requestsQueued(delta: number): void {
    this.#pendingRequests += delta;
  }

  /** The token verifications in flight and waiting now. */
  authPending(inFlight: number, waiting: number): void {
    this.#authInFlight = inFlight;
    this.#authWaiting = waiting;
  }

  /** Records one event's latency from its own `timestamp` (ISO 8601) to now. */
  eventLatency(timestamp: string, nowMs: number): void {
    const at = Date.parse(timestamp);
    if (Number.isFinite(at)) this.#latency.observe(Math.max(0, nowMs - at) / 1000);
  }
}

function byLabel<L extends string, V>(labels: readonly L[], make: (label: L) => V): Record<L, V> {
  const out = {} as Record<L, V>;
  for (const label of labels) out[label] = make(label);
  return out;
}
