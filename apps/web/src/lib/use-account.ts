/**
 * The logged-in user's orders and portfolio, fed from three sources: REST loads (at login,
 * after a reconnect, on resync), the POST /orders reply, and WebSocket events. Orders are
 * merged by id, so the same order from two sources is one row; a REST portfolio that may
 * have been read before a live update arrived is discarded in favour of the live one.
 */
import { useCallback, useEffect, useMemo, useRef, useState } from 'react';
import { backoffDelay } from '@repo/retry';
import { ApiError, getOrders, getPortfolio, type OrderView, type Portfolio, type Session } from './api.ts';

type Timer = ReturnType<typeof setTimeout>;

/** Orders kept on screen; older ones are a REST page away (the list shows the newest). */
const MAX_ORDERS_SHOWN = 100;

/**
 * The pause before each retry of a failed reload: full jitter, 500 ms doubling to 10 s. A
 * reload is often the only way the page learns of orders it missed (after a resync nothing
 * replays them), so a failed one is retried until one succeeds or the session changes.
 */
const RELOAD_BACKOFF = { baseDelayMs: 500, maxDelayMs: 10_000 };

const statusRank = { pending: 0, filled: 1, rejected: 1 } as const;

/** Two views of one order: later non-empty fields win, a final status beats pending. */
function mergeOrder(a: OrderView, b: OrderView): OrderView {
  return {
    orderId: a.orderId,
    status: statusRank[b.status] >= statusRank[a.status] ? b.status : a.status,
    symbol: b.symbol || a.symbol,
    side: b.side ?? a.side,
    size: b.size ?? a.size,
    price: b.price ?? a.price,
    fee: b.fee ?? a.fee,
    reason: b.reason ?? a.reason,
    timestamp: b.timestamp ?? a.timestamp,
    seq: b.seq ?? a.seq,
  };
}

/** Newest first: by time, then by id (ids grow with time). */
function newestFirst(a: OrderView, b: OrderView): number {
  const ta = a.timestamp ? Date.parse(a.timestamp) : 0;
  const tb = b.timestamp ? Date.parse(b.timestamp) : 0;
  return tb - ta || b.orderId - a.orderId;
}

export interface Account {
  orders: OrderView[];
  portfolio: Portfolio | null;
  /** Set while the first load runs. */
  loading: boolean;
  /** The last REST failure, cleared by the next success. */
  error: string | null;
  /**
   * The highest order `seq` the page knows of: 0 for a user without orders, null until the
   * orders have been loaded once. Every order the user places from now on has a higher one.
   */
  latestSeq: number | null;
  /** Reloads orders and portfolio over REST. */
  reload: () => Promise<void>;
  applyOrder: (order: OrderView) => void;
  applyPortfolio: (portfolio: Portfolio) => void;
}

/**
 * @param onUnauthorized called when the API answers 401: the session ended elsewhere.
 */
export function useAccount(session: Session | null, onUnauthorized: () => void): Account {
  const [orders, setOrders] = useState<Map<number, OrderView>>(() => new Map());
  const [portfolio, setPortfolio] = useState<Portfolio | null>(null);
  const [loading, setLoading] = useState(false);
  const [error, setError] = useState<string | null>(null);
  // Whose orders have been loaded: until this session's first load, its latest seq is unknown.
  const [loadedFor, setLoadedFor] = useState<string | null>(null);
  // Bumped by every live portfolio update: a REST read started before one is stale.
  const livePortfolioEpoch = useRef(0);
  const token = session?.token ?? null;
  const tokenRef = useRef(token);
  tokenRef.current = token;
  const onUnauthorizedRef = useRef(onUnauthorized);
  onUnauthorizedRef.current = onUnauthorized;
  // Reloads are numbered as they start. A success clears the error and the pending retry only
  // when it started no earlier than the latest failed one: an older read may predate what the
  // failed one was asked to bring. Likewise a failure matters only if no later one succeeded.
  const reloads = useRef({
    started: 0,
    failedFrom: 0,
    succeededFrom: 0,
    failures: 0,
    retryTimer: undefined as Timer | undefined,
  });

  const applyOrder = useCallback((order: OrderView) => {
    setOrders((current) => {
      const next = new Map(current);
      const known = next.get(order.orderId);
      next.set(order.orderId, known ? mergeOrder(known, order) : order);
      return next;
    });
  }, []);

  const applyPortfolio = useCallback((incoming: Portfolio) => {
    livePortfolioEpoch.current += 1;
    setPortfolio((current) => newerPortfolio(current, incoming));
  }, []);

  const reload = useCallback(async () => {
    const forToken = tokenRef.current;
    if (!forToken) return;
    const epoch = livePortfolioEpoch.current;
    const state = reloads.current;
    const id = ++state.started;
    try {
      const [loadedOrders, loadedPortfolio] = await Promise.all([getOrders(forToken), getPortfolio(forToken)]);
      if (tokenRef.current !== forToken) return; // logged out or switched user meanwhile
      setOrders((current) => {
        const next = new Map(current);
        for (const order of loadedOrders) {
          const known = next.get(order.orderId);
          next.set(order.orderId, known ? mergeOrder(order, known) : order);
        }
        return next;
      });
      // Two reloads can overlap (a reconnect and a resync at once), and the older answer may
      // come last: it must not put back a portfolio older than the one shown.
      if (livePortfolioEpoch.current === epoch) setPortfolio((current) => newerPortfolio(current, loadedPortfolio));
      setLoadedFor(forToken);
      state.succeededFrom = Math.max(state.succeededFrom, id);
      if (id >= state.failedFrom) {
        clearTimeout(state.retryTimer);
        state.failures = 0;
        setError(null);
      }
    } catch (err) {
      if (tokenRef.current !== forToken) return;
      if (err instanceof ApiError && err.status === 401) {
        onUnauthorizedRef.current();
        return;
      }
      if (id < state.succeededFrom) return;
      setError(err instanceof ApiError ? err.message : 'Could not load your account');
      state.failedFrom = Math.max(state.failedFrom, id);
      clearTimeout(state.retryTimer);
      state.retryTimer = setTimeout(
        () => {
          if (tokenRef.current === forToken) void reloadRef.current();
        },
        backoffDelay(state.failures++, RELOAD_BACKOFF),
      );
    }
  }, []);
  const reloadRef = useRef(reload);
  reloadRef.current = reload;

  useEffect(() => {
    setOrders(new Map());
    setPortfolio(null);
    setError(null);
    const state = reloads.current;
    const stopRetrying = () => {
      clearTimeout(state.retryTimer);
      state.failures = 0;
    };
    stopRetrying();
    if (!token) return;
    setLoading(true);
    void reload().finally(() => {
      if (tokenRef.current === token) setLoading(false);
    });
    return stopRetrying;
  }, [token, reload]);

  // Sorted once per change of the orders, not on every price tick that re-renders the page.
  const sorted = useMemo(() => [...orders.values()].sort(newestFirst).slice(0, MAX_ORDERS_SHOWN), [orders]);
  const loaded = token !== null && loadedFor === token;
  const latestSeq = useMemo(
    () => (loaded ? [...orders.values()].reduce((max, o) => Math.max(max, o.seq ?? 0), 0) : null),
    [orders, loaded],
  );
  return { orders: sorted, portfolio, loading, error, latestSeq, reload, applyOrder, applyPortfolio };
}

/** `incoming` unless `current` is of a later version (both versioned): a portfolio never goes back. */
export function newerPortfolio(current: Portfolio | null, incoming: Portfolio): Portfolio {
  return current && current.version !== null && incoming.version !== null && incoming.version < current.version
    ? current
    : incoming;
}
