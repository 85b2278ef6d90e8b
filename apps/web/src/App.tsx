import { useCallback, useEffect, useMemo, useState, useSyncExternalStore } from 'react';
import { getConfig, getPrices, logout as apiLogout, type PublicConfig, type Session } from './lib/api.ts';
import { PriceFeed } from './lib/price-feed.ts';
import { clearSession, loadSession, saveSession } from './lib/session-storage.ts';
import { useAccount } from './lib/use-account.ts';
import { useGateway } from './lib/use-gateway.ts';
import { AuthPanel } from './components/AuthPanel.tsx';
import { ConnectionBadge } from './components/ConnectionBadge.tsx';
import { OrderTicket } from './components/OrderTicket.tsx';
import { OrdersPanel } from './components/OrdersPanel.tsx';
import { PortfolioPanel } from './components/PortfolioPanel.tsx';
import { PricePanel } from './components/PricePanel.tsx';

/** The one market the page trades; the API's symbol list starts with it. */
const SYMBOL = 'SOL';

const SESSION_END_NOTICES: Record<string, string> = {
  session_revoked: 'You were logged out (the session was ended). Log in again to trade.',
  session_expired: 'Your session expired. Log in again to trade.',
  auth_failed: 'Your session is no longer valid. Log in again to trade.',
  unauthorized: 'Your session is no longer valid. Log in again to trade.',
};

export function App() {
  const [session, setSession] = useState<Session | null>(() => loadSession());
  const [notice, setNotice] = useState<string | null>(null);
  const feed = useMemo(() => new PriceFeed(SYMBOL), []);
  const price = useSyncExternalStore(feed.subscribe, feed.getSnapshot);
  const [config, setConfig] = useState<PublicConfig | null>(null);

  // The fee rate and the price age limit come from the server, never from a copy in the page.
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
  useEffect(() => feed.setMaxAge(config?.maxPriceAgeMs ?? null), [feed, config]);
  useEffect(() => () => feed.dispose(), [feed]);

  const endSession = useCallback((code: string) => {
    clearSession();
    setSession(null);
    setNotice(SESSION_END_NOTICES[code] ?? SESSION_END_NOTICES.auth_failed ?? null);
  }, []);

  const account = useAccount(session, () => endSession('unauthorized'));

  const status = useGateway(session, {
    onPrice: (p) => feed.push(p),
    onOrder: account.applyOrder,
    onPortfolio: account.applyPortfolio,
    onStale: () => void account.reload(),
    onSessionEnded: endSession,
  });

  // The snapshot seeds the price and the chart before the first tick arrives.
  useEffect(() => {
    let cancelled = false;
    getPrices().then(
      (prices) => {
        if (cancelled) return;
        for (const p of prices) feed.push(p);
      },
      () => {
        // No snapshot: the WebSocket's own snapshot and ticks fill in.
      },
    );
    return () => {
      cancelled = true;
    };
  }, [feed]);

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
          <ConnectionBadge status={status} />
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

      <main className="layout">
        <div className="col col-main">
          <PricePanel symbol={SYMBOL} quote="USD" snapshot={price} feed={feed} live={status === 'live'} />
          <OrdersPanel session={session} orders={account.orders} loading={account.loading} error={account.error} />
        </div>
        <div className="col col-side">
          {session ? (
            <OrderTicket
              symbol={SYMBOL}
              session={session}
              livePrice={livePrice}
              priceStale={price.stale}
              feeRate={config?.feeRate ?? null}
              portfolio={account.portfolio}
              onOrder={account.applyOrder}
              onUnauthorized={() => endSession('unauthorized')}
            />
          ) : (
            <AuthPanel notice={notice} onAuthenticated={onAuthenticated} />
          )}
          <PortfolioPanel session={session} portfolio={account.portfolio} livePrice={livePrice} symbol={SYMBOL} />
        </div>
      </main>
    </div>
  );
}
