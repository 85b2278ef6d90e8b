import type { Portfolio, Session } from '../lib/api.ts';
import {
  formatAvailableUsd,
  formatExact,
  formatSize,
  formatUsd,
  sign,
  sum,
  times,
  unrealisedPnl,
} from '../lib/money.ts';

/**
 * USD and a position per market, each valued at its own live price. `markets` are the
 * configured symbols, listed even before the first trade; an asset held outside them (a market
 * since removed) is listed too.
 */
export function PortfolioPanel({
  session,
  portfolio,
  markets,
  livePrice,
}: {
  session: Session | null;
  portfolio: Portfolio | null;
  markets: readonly string[];
  /** The live price of a market, or null when none is known. */
  livePrice: (symbol: string) => string | null;
}) {
  const usd = portfolio?.balances.find((b) => b.asset === 'USD') ?? null;
  const assets = [...new Set([...markets, ...(portfolio?.positions.map((p) => p.asset) ?? [])])];
  const rows = assets.map((asset) => {
    const position = portfolio?.positions.find((p) => p.asset === asset);
    const size = position?.size ?? '0';
    const held = sign(size) > 0;
    const price = livePrice(asset);
    return {
      asset,
      size,
      held,
      avgEntryPrice: position?.avgEntryPrice ?? '0',
      pnl: !held ? '0' : price && position ? unrealisedPnl(size, position.avgEntryPrice, price) : null,
      value: !held ? '0' : price ? times(size, price) : null,
    };
  });
  // Unknown until every held position has a price: a total that leaves one out would be wrong.
  const equity =
    usd && rows.every((r) => r.value !== null) ? sum([usd.available, usd.locked, ...rows.map((r) => r.value)]) : null;

  return (
    <section className="panel portfolio" aria-label="Portfolio">
      <h2 className="panel-title">Portfolio</h2>
      {!session ? (
        <p className="empty muted">Log in to see your portfolio.</p>
      ) : !portfolio ? (
        <p className="empty muted">Loading…</p>
      ) : (
        <>
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
                {formatAvailableUsd(usd?.available ?? '0')}
              </dd>
            </div>
          </dl>
          <table className="positions-table">
            <caption className="visually-hidden">Positions</caption>
            <thead>
              <tr>
                <th scope="col">Asset</th>
                <th scope="col" className="right">
                  Size
                </th>
                <th scope="col" className="right">
                  Avg entry
                </th>
                <th scope="col" className="right">
                  <abbr title="Unrealised profit and loss at the live price">P&amp;L</abbr>
                </th>
              </tr>
            </thead>
            <tbody>
              {rows.map((row) => {
                const id = row.asset.toLowerCase();
                const pnlSign = sign(row.pnl);
                return (
                  <tr key={row.asset} data-asset={row.asset} className={row.held ? '' : 'position-empty'}>
                    <th scope="row">{row.asset}</th>
                    <td className="right num" data-testid={`${id}-size`}>
                      {formatSize(row.size)}
                    </td>
                    <td className="right num" data-testid={`${id}-avg-entry`}>
                      {row.held ? formatExact(row.avgEntryPrice) : '—'}
                    </td>
                    <td
                      className={`right num ${pnlSign > 0 ? 'up' : pnlSign < 0 ? 'down' : ''}`}
                      data-testid={`${id}-pnl`}
                    >
                      {formatUsd(row.pnl, true)}
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </>
      )}
    </section>
  );
}
