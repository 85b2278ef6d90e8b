import { formatPrice, priceChange, sign } from '../lib/money.ts';
import type { PriceFeed, PriceSnapshot } from '../lib/price-feed.ts';
import { PriceChart } from './PriceChart.tsx';

const clock = new Intl.DateTimeFormat(undefined, {
  hour: '2-digit',
  minute: '2-digit',
  second: '2-digit',
  hour12: false,
});

function trendClass(value: string | null | undefined): string {
  const s = sign(value);
  return s > 0 ? 'up' : s < 0 ? 'down' : 'flat';
}

/** The live price, its change since the page opened, and the chart. */
/** `live` false: the connection is down, so the figures shown may be behind; they are dimmed. */
export function PricePanel({
  symbol,
  quote,
  snapshot,
  feed,
  live,
}: {
  symbol: string;
  quote: string;
  snapshot: PriceSnapshot;
  feed: PriceFeed;
  live: boolean;
}) {
  const { latest, opening, previous } = snapshot;
  const change = latest && opening ? priceChange(opening, latest.price) : null;
  const tick = latest && previous ? priceChange(previous, latest.price) : null;
  const updated = latest ? new Date(latest.timestamp) : null;

  return (
    <section className={`panel price-panel ${live ? '' : 'stale'}`} aria-label="Price">
      <div className="price-head">
        <div className="pair">
          <span className="pair-base">{symbol}</span>
          <span className="pair-quote">/ {quote}</span>
        </div>
        <span
          className={`price-value num ${snapshot.stale ? 'price-stale' : trendClass(tick?.diff)}`}
          data-testid="price"
          data-stale={snapshot.stale ? 'true' : 'false'}
        >
          {latest ? formatPrice(latest.price) : '—'}
        </span>

        <span className="price-meta muted small">
          {snapshot.stale && latest ? (
            <span className="badge badge-pending" data-testid="price-stale" title="Trading waits for a fresh price">
              Stale
            </span>
          ) : (
            'Since open'
          )}{' '}
          ·{' '}
          <time className="num" dateTime={latest?.timestamp}>
            {updated ? clock.format(updated) : '--:--:--'}
          </time>
        </span>
        <span className={`price-change num ${trendClass(change?.diff)}`} data-testid="price-change">
          {change ? `${formatPrice(change.diff, true)} (${formatPrice(change.percent, true)}%)` : '0.00 (0.00%)'}
        </span>
      </div>
      <PriceChart feed={feed} />
    </section>
  );
}
