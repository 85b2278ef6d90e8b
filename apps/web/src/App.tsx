import { useCallback, useEffect, useMemo, useState, useSyncExternalStore } from 'react';
import { getConfig, getPrices, logout as apiLogout, type PublicConfig, type Session } from './lib/api.ts';
import { CHART_INTERVALS, chartInterval, type ChartIntervalId } from './lib/candle-series.ts';
import { MarketFeeds } from './lib/price-feed.ts';
import { clearSession, loadSession, saveSession } from './lib/session-storage.ts';
import { useAccount } from './lib/use-account.ts';
import { useCandleSeries } from './lib/use-candle-series.ts';
import { useGateway } from './lib/use-gateway.ts';
import { loadInterval, loadMarket, saveInterval, saveMarket } from './lib/view-choice.ts';
import { AuthPanel } from './components/AuthPanel.tsx';
import { ConnectionBadge } from './components/ConnectionBadge.tsx';
import { OrderTicket } from './components/OrderTicket.tsx';
import { OrdersPanel } from './components/OrdersPanel.tsx';
import { PortfolioPanel } from './components/PortfolioPanel.tsx';
import { PricePanel } from './components/PricePanel.tsx';

/** The market shown before the server has said which ones it trades. */
const FIRST_MARKET = 'SOL';
const DEFAULT_INTERVAL: ChartIntervalId = '1m';

const SESSION_END_NOTICES: Record<string, string> = {
  session_revoked: 'You were logged out (the session was ended). Log in again to trade.',
  session_expired: 'Your session expired. Log in again to trade.',
  auth_failed: 'Your session is no longer valid. Log in again to trade.',
  unauthorized: 'Your session is no longer valid. Log in again to trade.',
};

export function App() {
  const [session, setSession] = useState<Session | null>(() => loadSession());
  const [notice, setNotice] = useState<string | null>(null);
  const feeds = useMemo(() => new MarketFeeds(), []);
  const [config, setConfig] = useState<PublicConfig | null>(null);
  const [chosenMarket, setChosenMarket] = useState<string | null>(() => loadMarket());
  const [intervalId, setIntervalId] = useState<ChartIntervalId>(
    () => chartInterval(loadInterval())?.id ?? DEFAULT_INTERVAL,
  );
  const [reconnects, setReconnects] = useState(0);

  // The markets, the fee rate and the price age limit come from the server, never from a copy in the page.
  useEffect(() => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    let cancelled = false;
    const load = (attempt: number) => {
      getConfig().then(
        (loaded) => {
          if (!cancelled) setConfig(loaded);
        },
        () => {
          if (!cancelled) timer = setTimeout(() => load(attempt + 1), Math.min(5000, 500 * 2 ** attempt));
        },
      );
    };
    load(0);
    return () => {
      cancelled = true;
      clearTimeout(timer);
    };
  }, []);
  useEffect(() => feeds.setMaxAge(config?.maxPriceAgeMs ?? null), [feeds, config]);
  useEffect(() => () => feeds.dispose(), [feeds]);

  const markets = config?.symbols.length ? config.symbols : [chosenMarket ?? FIRST_MARKET];
  const market = chosenMarket && markets.includes(chosenMarket) ? chosenMarket : (markets[0] ?? FIRST_MARKET);
  const interval = chartInterval(intervalId) ?? CHART_INTERVALS[1];
  const feed = feeds.feed(market);
  const price = useSyncExternalStore(feed.subscribe, feed.getSnapshot);
  // Every market's ticks re-render the page: the portfolio values each position at its own price.
  useSyncExternalStore(feeds.subscribe, feeds.getVersion);
  const series = useCandleSeries(feed, interval, config !== null && markets.includes(market), reconnects);

  const chooseMarket = useCallback((symbol: string) => {
    setChosenMarket(symbol);
    saveMarket(symbol);
  }, []);
  const chooseInterval = useCallback((id: ChartIntervalId) => {
    setIntervalId(id);
    saveInterval(id);
  }, []);

  const endSession = useCallback((code: string) => {
    clearSession();
    setSession(null);
    setNotice(SESSION_END_NOTICES[code] ?? SESSION_END_NOTICES.auth_failed ?? null);
  }, []);

  const account = useAccount(session, () => endSession('unauthorized'));

  // The page subscribes to every market's prices and gives each tick to its market's feed.
  const { status, problem: connectionProblem } = useGateway(session, {
    onPrice: (p) => feeds.push(p),
    onOrder: account.applyOrder,
    onPortfolio: account.applyPortfolio,
    onStale: () => void account.reload(),
    onReconnected: () => setReconnects((n) => n + 1),
    onSessionEnded: endSession,
  });

  // The snapshot seeds every market's price before the first tick arrives, and is read again
  // after each reconnect: the gateway's snapshot of a price that stopped while the page was
  // away carries no verdict, and only the server can say it is stale.
  useEffect(() => {
    let cancelled = false;
    getPrices().then(
      (prices) => {
        if (cancelled) return;
        for (const p of prices) feeds.push(p);
      },
      () => {
        // No snapshot: the WebSocket's own snapshot and ticks fill in.
      },
    );
    return () => {
      cancelled = true;
    };
  }, [feeds, reconnects]);

  const onAuthenticated = useCallback((next: Session) => {
    saveSession(next);
    setNotice(null);
    setSession(next);
  }, []);

  const onLogout = useCallback(async () => {
    const current = session;
    clearSession();
    setSession(null);
    setNotice(null);
    if (current) {
      // The local session is gone either way; the server call only revokes the token.
      await apiLogout(current.token).catch(() => undefined);
    }
  }, [session]);

  const livePrice = price.latest?.price ?? null;

  return (
    <div className="app">
      <header className="topbar">
        <div className="brand">
          <svg className="brand-mark" viewBox="0 0 32 32" aria-hidden="true">
            <path
              d="M5 22l7-7 5 4 10-10"
              fill="none"
              stroke="currentColor"
              strokeWidth="3"
              strokeLinecap="round"
              strokeLinejoin="round"
            />
          </svg>
          <span className="brand-name">tradewire</span>
          <span className="brand-tag">Paper trading</span>
        </div>
        <div className="topbar-right">
          <ConnectionBadge status={status} problem={connectionProblem} />
          {session && (
            <div className="user">
              <span className="user-name" title={`Logged in as ${session.username}`}>
                {session.username}
              </span>
              <button type="button" className="btn btn-ghost" onClick={() => void onLogout()}>
                Log out
              </button>
            </div>
          )}
        </div>
      </header>

      {connectionProblem && (
        <p className="notice conn-problem" role="alert">
          {connectionProblem}
        </p>
      )}
      <main className="layout">
        <div className="col col-main">
          <PricePanel
            symbol={market}
            symbols={markets}
            onSymbol={chooseMarket}
            quote="USD"
            snapshot={price}
            series={series}
            interval={interval}
            onInterval={chooseInterval}
            live={status === 'live'}
          />
          <OrdersPanel session={session} orders={account.orders} loading={account.loading} error={account.error} />
        </div>
        <div className="col col-side">
          {session ? (
            <OrderTicket
              // A new market is a new ticket: a size typed for one market is not sent to another.
              key={market}
              symbol={market}
              session={session}
              livePrice={livePrice}
              priceStale={price.stale}
              feeRate={config?.feeRate ?? null}
              portfolio={account.portfolio}
              orders={account.orders}
              latestSeq={account.latestSeq}
              onOrder={account.applyOrder}
              onUnauthorized={() => endSession('unauthorized')}
            />
          ) : (
            <AuthPanel notice={notice} onAuthenticated={onAuthenticated} />
          )}
          <PortfolioPanel
            session={session}
            portfolio={account.portfolio}
            markets={markets}
            livePrice={(symbol) => feeds.latestPrice(symbol)}
          />
        </div>
      </main>
    </div>
  );
}
