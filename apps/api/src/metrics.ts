import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

export interface ApiMetrics {
  httpRequests: Counter<'method' | 'route' | 'status'>;
  httpDuration: Histogram<'method' | 'route'>;
  orders: Counter<'outcome' | 'reason'>;
  loginThrottled: Counter<'scope'>;
  ordersThrottled: Counter;
  candlesThrottled: Counter;
  passwordHashesInFlight: Gauge;
  passwordHashesRefused: Counter;
  outboxPublished: Counter<'kind'>;
  outboxPublishErrors: Counter<'reason'>;
}

/**
 * The API's Prometheus metrics on `registry`. Names carry a `tradewire_api_` prefix so they
 * can share one registry with the gateway's in the single-process mode. `backlog` is read at
 * scrape time (a COUNT on the outbox's partial index).
 */
export function createApiMetrics(registry: Registry, backlog: () => Promise<number>): ApiMetrics {
  const registers = [registry];
  new Gauge({
    name: 'tradewire_api_outbox_backlog',
    help: 'Recorded events not yet published by the outbox relay',
    registers,
    async collect() {
      try {
        this.set(await backlog());
      } catch {
        // Database down: leave the last value rather than failing the whole scrape.
      }
    },
  });
  return {
    httpRequests: new Counter({
      name: 'tradewire_api_http_requests_total',
      help: 'HTTP requests by method, route and status',
      labelNames: ['method', 'route', 'status'],
      registers,
    }),
    httpDuration: new Histogram({
      name: 'tradewire_api_http_request_duration_seconds',
      help: 'HTTP request duration by method and route',
      labelNames: ['method', 'route'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers,
    }),
    orders: new Counter({
      name: 'tradewire_api_orders_total',
      help: 'Orders executed, by outcome (filled, rejected) and rejection reason',
      labelNames: ['outcome', 'reason'],
      registers,
    }),
    loginThrottled: new Counter({
      name: 'tradewire_api_login_throttled_total',
      help: 'Login or register attempts refused with 429, by limit (address, username_address, username, register)',
      labelNames: ['scope'],
      registers,
    }),
    ordersThrottled: new Counter({
      name: 'tradewire_api_orders_throttled_total',
      help: 'Orders refused with 429 by the per-user order rate limit',
      registers,
    }),
    candlesThrottled: new Counter({
      name: 'tradewire_api_candles_throttled_total',
      help: 'GET /candles refused with 429 by the per-address limit',
      registers,
    }),
    passwordHashesInFlight: new Gauge({
      name: 'tradewire_api_password_hashes_in_flight',
      help: 'Password hashes (login, registration) running or queued on the thread pool now',
      registers,
    }),
    passwordHashesRefused: new Counter({
      name: 'tradewire_api_password_hashes_refused_total',
      help: 'Logins and registrations refused with 429 because every password hash slot was taken',
      registers,
    }),
    outboxPublished: new Counter({
      name: 'tradewire_api_outbox_published_total',
      help: 'Outbox events published, by kind',
      labelNames: ['kind'],
      registers,
    }),
    outboxPublishErrors: new Counter({
      name: 'tradewire_api_outbox_publish_errors_total',
      help: 'Outbox relay failures, by reason (docs/delivery.md: broker_unavailable, broker_timeout, broker_error, …)',
      labelNames: ['reason'],
      registers,
    }),
  };
}
