/**
 * The page's one WebSocket connection, on @repo/client. Prices need no login; with a session
 * the connection also authenticates and subscribes to the user's orders and portfolio. The
 * client reconnects, re-authenticates and resubscribes by itself; this hook turns its state
 * into the status the page shows and asks for a REST reload after a reconnect or a resync,
 * since events published while the socket was down may be gone.
 */
import { useEffect, useRef, useState, useSyncExternalStore } from 'react';
import { connect, type TradewireClient } from '@repo/client';
import { backoffDelay } from '@repo/retry';
import {
  gatewayUrl,
  getConfig,
  orderFrom,
  portfolioFrom,
  priceFrom,
  type OrderView,
  type Portfolio,
  type Price,
  type Session,
} from './api.ts';

export type ConnectionStatus = 'connecting' | 'live' | 'reconnecting' | 'offline';

/** How often the page retries GET /config while the API cannot be reached. */
const CONFIG_RETRY_MS = [500, 1000, 2000, 5000];
/**
 * The pause before reading GET /config again when its gateway address could not be used: full
 * jitter, 1 s doubling to 30 s. A fixed configuration is picked up; a broken one costs a read
 * every 30 s at most.
 */
const ADDRESS_RETRY_BACKOFF = { baseDelayMs: 1000, maxDelayMs: 30_000 };

export interface GatewayState {
  status: ConnectionStatus;
  /** Why the page has no live connection when the cause is known and will not pass by itself. */
  problem: string | null;
}

export interface GatewayHandlers {
  onPrice(price: Price): void;
  onOrder(order: OrderView): void;
  onPortfolio(portfolio: Portfolio): void;
  /** The connection came back, or the server could not replay what was missed. */
  onStale(): void;
  /** The connection came back after a drop: prices published meanwhile never arrived. */
  onReconnected(): void;
  /** The server ended the session (logout elsewhere, expiry) or refused the token. */
  onSessionEnded(code: string): void;
}

const SESSION_END_CODES = new Set(['session_revoked', 'session_expired', 'auth_failed']);
/**
 * Answers that mean "not now" (docs/protocol.md: the session store was slow or down, too many
 * authentications at once in a reconnect storm, Redis briefly away): the same request is
 * asked again after a pause, on the open connection.
 */
const TRANSIENT_CODES = new Set(['internal_error', 'rate_limited', 'broker_unavailable']);
/** The pause before each retry of a transient refusal: full jitter, 500 ms doubling to 10 s. */
const TRANSIENT_BACKOFF = { baseDelayMs: 500, maxDelayMs: 10_000 };

function codeOf(err: unknown): string {
  return typeof err === 'object' && err !== null && typeof (err as { code?: unknown }).code === 'string'
    ? (err as { code: string }).code
    : 'unknown';
}

/**
 * Why the browser refused to open a socket to `url`. The WebSocket constructor throws
 * synchronously for an address it will not use: a SecurityError for ws:// from an https page
 * (or a blocked port), a SyntaxError for a malformed URL.
 */
function addressProblem(err: unknown): string {
  const name = err instanceof Error || err instanceof DOMException ? err.name : '';
  return name === 'SecurityError'
    ? 'Live updates are unavailable: the browser refused the server’s live connection address'
    : 'Live updates are unavailable: the server’s live connection address is not valid';
}

export function useGateway(session: Session | null, handlers: GatewayHandlers): GatewayState {
  const [status, setStatus] = useState<ConnectionStatus>('connecting');
  const [problem, setProblem] = useState<string | null>(null);
  const handlersRef = useRef(handlers);
  handlersRef.current = handlers;
  const token = session?.token ?? null;

  useEffect(() => {
    let stopped = false;
    let client: TradewireClient | null = null;
    let retryTimer: ReturnType<typeof setTimeout> | undefined;
    let setUpTimer: ReturnType<typeof setTimeout> | undefined;
    const h = () => handlersRef.current;

    const mapState = (state: string) => {
      if (stopped) return;
      setStatus(
        state === 'open'
          ? 'live'
          : state === 'reconnecting'
            ? 'reconnecting'
            : state === 'closed'
              ? 'offline'
              : 'connecting',
      );
    };

    const start = async (attempt: number): Promise<void> => {
      let url: string | null = null;
      try {
        url = gatewayUrl(await getConfig(), window.location);
      } catch {
        // The API is unreachable: show it, and try again with a growing delay.
      }
      if (stopped) return;
      if (!url) {
        setStatus('offline');
        // Whatever was wrong with the address, the reason now is the API: say nothing stale.
        setProblem(null);
        const delay = CONFIG_RETRY_MS[Math.min(attempt, CONFIG_RETRY_MS.length - 1)] ?? 5000;
        retryTimer = setTimeout(() => void start(attempt + 1), delay);
        return;
      }

      let c: TradewireClient;
      try {
        c = connect(url);
      } catch (err) {
        // Left unhandled, this stayed "Connecting…" for good with no prices and no retry.
        console.warn(`tradewire: cannot open the live connection to ${url}`, err);
        setStatus('offline');
        setProblem(addressProblem(err));
        retryTimer = setTimeout(() => void start(attempt + 1), backoffDelay(attempt, ADDRESS_RETRY_BACKOFF));
        return;
      }
      client = c;
      setProblem(null);
      // What is set up on this client; a step that failed for want of a connection is
      // retried the next time the client is open (the client keeps only what succeeded).
      const done = { prices: false, auth: false, orders: false, portfolio: false };
      let retryWhenOpen = false;
      let transientFailures = 0;
      const retrySetUp = () => {
        if (c.state === 'open') void setUp();
        else retryWhenOpen = true;
      };

      const setUp = async (): Promise<void> => {
        try {
          if (!done.prices) {
            await c.subscribe('prices', (message) => {
              const price = priceFrom(message);
              if (price && !stopped) h().onPrice(price);
            });
            done.prices = true;
          }
          if (!token || stopped) return;
          if (!done.auth) {
            await c.auth(token);
            done.auth = true;
          }
          if (!done.orders && !stopped) {
            await c.subscribe('orders', (message) => {
              const order = orderFrom(message);
              if (order && !stopped) h().onOrder(order);
            });
            done.orders = true;
          }
          if (!done.portfolio && !stopped) {
            await c.subscribe('portfolio', (message) => {
              const portfolio = portfolioFrom(message);
              if (portfolio && !stopped) h().onPortfolio(portfolio);
            });
            done.portfolio = true;
          }
          transientFailures = 0;
          // Anything that happened between the first REST load and these subscriptions.
          if (!stopped) h().onStale();
        } catch (err) {
          if (stopped) return;
          const code = codeOf(err);
          if (token && SESSION_END_CODES.has(code)) {
            h().onSessionEnded(code);
          } else if (code === 'connection_closed' || code === 'timeout') {
            retrySetUp();
          } else if (TRANSIENT_CODES.has(code)) {
            // Left alone, the page would show Live with prices ticking while the user's orders
            // and portfolio never update: the client retries these only when it reconnects.
            clearTimeout(setUpTimer);
            setUpTimer = setTimeout(
              () => {
                if (!stopped) retrySetUp();
              },
              backoffDelay(transientFailures++, TRANSIENT_BACKOFF),
            );
          }
          // Anything else (a refusal with another code) is not going to work by retrying.
        }
      };

      mapState(c.state);
      c.on('state', (state) => {
        mapState(state);
        if (state === 'open' && retryWhenOpen && !stopped) {
          retryWhenOpen = false;
          void setUp();
        }
      });
      c.on('reconnected', () => {
        if (stopped) return;
        h().onStale();
        h().onReconnected();
      });
      c.on('resync', () => {
        if (!stopped) h().onStale();
      });
      c.on('error', (err: unknown) => {
        const code = codeOf(err);
        if (!stopped && token && SESSION_END_CODES.has(code)) h().onSessionEnded(code);
      });
      await setUp();
    };

    void start(0);
    return () => {
      stopped = true;
      clearTimeout(retryTimer);
      clearTimeout(setUpTimer);
      client?.close();
    };
  }, [token]);

  // The browser knows when the device has no network at all: that is offline, whatever the
  // socket's own state (a dead network can take a while to close a socket).
  const online = useSyncExternalStore(subscribeOnline, () => navigator.onLine);
  return { status: online ? status : 'offline', problem };
}

function subscribeOnline(onChange: () => void): () => void {
  window.addEventListener('online', onChange);
  window.addEventListener('offline', onChange);
  return () => {
    window.removeEventListener('online', onChange);
    window.removeEventListener('offline', onChange);
  };
}
