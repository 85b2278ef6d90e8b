import type { Portfolio, Session } from '../lib/api.ts';
import { formatPrice, formatSize, formatUsd, sign, sum, times, unrealisedPnl } from '../lib/money.ts';

/** USD and SOL holdings, valued at the live price. */
export function PortfolioPanel({
  session,
  portfolio,
  livePrice,
  symbol,
}: {
  session: Session | null;
  portfolio: Portfolio | null;
  livePrice: string | null;
  symbol: string;
}) {
  const usd = portfolio?.balances.find((b) => b.asset === 'USD') ?? null;
  const position = portfolio?.positions.find((p) => p.asset === symbol) ?? null;
  const size = position?.size ?? '0';
  const hasPosition = sign(size) > 0;
  const pnl =
    hasPosition && livePrice && position
      ? unrealisedPnl(size, position.avgEntryPrice, livePrice)
      : hasPosition
        ? null
        : '0';
  const marketValue = livePrice ? times(size, livePrice) : hasPosition ? null : '0';
  const equity = usd && marketValue !== null ? sum([usd.available, usd.locked, marketValue]) : null;
  const pnlSign = sign(pnl);

  return (
    <section className="panel portfolio" aria-label="Portfolio">
      <h2 className="panel-title">Portfolio</h2>
      {!session ? (
        <p className="empty muted">Log in to see your portfolio.</p>
      ) : !portfolio ? (
        <p className="empty muted">Loading…</p>
      ) : (
        <dl className="rows">
          <div className="row row-strong">
            <dt>Total equity</dt>
            <dd className="num" data-testid="total-equity">
              {formatUsd(equity)} <span className="unit">USD</span>
            </dd>
          </div>
          <div className="row">
            <dt>USD available</dt>
            <dd className="num" data-testid="usd-available">
              {formatUsd(usd?.available ?? '0')}
            </dd>
          </div>
          <div className="row">
            <dt>{symbol} size</dt>
            <dd className="num" data-testid="sol-size">
              {formatSize(size)}
            </dd>
          </div>
          <div className="row">
            <dt>Avg entry</dt>
            <dd className="num" data-testid="avg-entry">
              {hasPosition && position ? formatPrice(position.avgEntryPrice) : '—'}
            </dd>
          </div>
          <div className="row">
            <dt>Unrealised P&amp;L</dt>
            <dd className={`num ${pnlSign > 0 ? 'up' : pnlSign < 0 ? 'down' : ''}`} data-testid="unrealised-pnl">
              {formatUsd(pnl, true)}
            </dd>
          </div>
        </dl>
      )}
    </section>
  );
}
