import { useId, useRef, type KeyboardEvent } from 'react';
import { CHART_INTERVALS, type CandleSeries, type ChartInterval, type ChartIntervalId } from '../lib/candle-series.ts';
import { formatPrice, priceChange, sign } from '../lib/money.ts';
import type { PriceSnapshot } from '../lib/price-feed.ts';
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

/**
 * The chosen market: its live price, change since the page opened, and its candle chart, with
 * the market switcher (`Market`) and the chart interval (1 second, 1 minute, 1 hour).
 * `live` false: the connection is down, so the figures shown may be behind; they are dimmed.
 */
export function PricePanel({
  symbol,
  symbols,
  onSymbol,
  quote,
  snapshot,
  series,
  interval,
  onInterval,
  live,
}: {
  symbol: string;
  /** The markets to choose from (the server's `symbols`). */
  symbols: readonly string[];
  onSymbol: (symbol: string) => void;
  quote: string;
  snapshot: PriceSnapshot;
  series: CandleSeries;
  interval: ChartInterval;
  onInterval: (id: ChartIntervalId) => void;
  live: boolean;
}) {
  const { latest, opening, previous } = snapshot;
  const change = latest && opening ? priceChange(opening, latest.price) : null;
  const tick = latest && previous ? priceChange(previous, latest.price) : null;
  const updated = latest ? new Date(latest.timestamp) : null;
  const markets = symbols.includes(symbol) ? symbols : [symbol, ...symbols];
  const marketId = useId();

  return (
    <section className={`panel price-panel ${live ? '' : 'stale'}`} aria-label="Price">
      <div className="price-head">
        <div className="pair">
          <label className="visually-hidden" htmlFor={marketId}>
            Market
          </label>
          <select
            id={marketId}
            className="market-select"
            value={symbol}
            onChange={(e) => onSymbol(e.target.value)}
            data-testid="market"
          >
            {markets.map((s) => (
              <option key={s} value={s}>
                {s} / {quote}
              </option>
            ))}
          </select>
        </div>
        <span
          className={`price-value num ${snapshot.stale ? 'price-stale' : trendClass(tick?.diff)}`}
          data-testid="price"
          data-symbol={symbol}
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
      <IntervalSwitch value={interval.id} onChange={onInterval} />
      <PriceChart series={series} />
    </section>
  );
}

/** A radio group of the chart intervals: arrow keys move the choice, as in any radio group. */
function IntervalSwitch({ value, onChange }: { value: ChartIntervalId; onChange: (id: ChartIntervalId) => void }) {
  const buttons = useRef<(HTMLButtonElement | null)[]>([]);
  const index = CHART_INTERVALS.findIndex((i) => i.id === value);

  const onKeyDown = (event: KeyboardEvent<HTMLDivElement>) => {
    const step = { ArrowRight: 1, ArrowDown: 1, ArrowLeft: -1, ArrowUp: -1 }[event.key];
    if (step === undefined) return;
    event.preventDefault();
    const next = (index + step + CHART_INTERVALS.length) % CHART_INTERVALS.length;
    onChange(CHART_INTERVALS[next]!.id);
    buttons.current[next]?.focus();
  };

  return (
    <div className="interval-switch" role="radiogroup" aria-label="Chart interval" onKeyDown={onKeyDown}>
      {CHART_INTERVALS.map((interval, i) => (
        <button
          key={interval.id}
          ref={(el) => {
            buttons.current[i] = el;
          }}
          type="button"
          role="radio"
          aria-checked={interval.id === value}
          aria-label={interval.name}
          title={`${interval.name} candles`}
          tabIndex={interval.id === value ? 0 : -1}
          className={`interval ${interval.id === value ? 'interval-on' : ''}`}
          onClick={() => onChange(interval.id)}
        >
          {interval.id}
        </button>
      ))}
    </div>
  );
}
