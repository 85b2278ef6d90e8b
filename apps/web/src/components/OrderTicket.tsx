import { useState, type FormEvent } from 'react';
import {
  isUndecided,
  newIdempotencyKey,
  placeOrder,
  type OrderView,
  type Portfolio,
  type Session,
} from '../lib/api.ts';
import { reasonText } from '../lib/reasons.ts';
import { loadSession } from '../lib/session-storage.ts';
import { forgetUndecided, keyForOrder, rememberUndecided } from '../lib/undecided-order.ts';
import {
  checkSize,
  estimateOrder,
  formatAvailableUsd,
  formatFee,
  formatPrice,
  formatSize,
  formatUsd,
  times,
} from '../lib/money.ts';

type Side = 'buy' | 'sell';
type Result = { kind: 'filled' | 'rejected' | 'error'; text: string };

function describe(order: OrderView): Result {
  if (order.status === 'rejected') return { kind: 'rejected', text: `Rejected: ${reasonText(order.reason)}` };
  const verb = order.side === 'sell' ? 'Sold' : 'Bought';
  return {
    kind: 'filled',
    text:
      `${verb} ${formatSize(order.size)} ${order.symbol} at ${formatPrice(order.price)}` +
      ` · fee ${formatFee(order.fee)} USD`,
  };
}

/**
 * Market order entry: size, Buy and Sell, the estimate at the live price, and the outcome of
 * the last order. The estimate is only a guide: the order fills at the price when it arrives.
 */
export function OrderTicket({
  symbol,
  session,
  livePrice,
  priceStale,
  feeRate,
  portfolio,
  onOrder,
  onUnauthorized,
}: {
  symbol: string;
  session: Session;
  livePrice: string | null;
  /** The live price is too old to trade at: Buy and Sell wait for a fresh one. */
  priceStale: boolean;
  /** The server's fee rate (`GET /config`); null until it is known. */
  feeRate: string | null;
  portfolio: Portfolio | null;
  onOrder: (order: OrderView) => void;
  onUnauthorized: () => void;
}) {
  const [size, setSize] = useState('');
  const [touched, setTouched] = useState(false);
  const [busy, setBusy] = useState<Side | null>(null);
  const [result, setResult] = useState<Result | null>(null);

  const check = checkSize(size);
  const estimate = check.ok && livePrice && feeRate ? estimateOrder(livePrice, check.size, feeRate) : null;
  /** "0.01%" for a fee rate of 0.0001. */
  const feePercent = feeRate ? `${times(feeRate, '100') ?? feeRate}%` : '…';
  const canTrade = busy === null && livePrice !== null && !priceStale;
  const usd = portfolio?.balances.find((b) => b.asset === 'USD')?.available ?? null;
  const held = portfolio?.positions.find((p) => p.asset === symbol)?.size ?? null;
  const showError = touched && !check.ok && size !== '';

  async function submit(side: Side) {
    setTouched(true);
    if (!check.ok || busy) return;
    setBusy(side);
    // The last order's result would otherwise stand for this one until its answer comes.
    setResult(null);
    // One key per order: the client's own retries reuse it, and so does a click on the same
    // order after its fate stayed unknown, so it executes once.
    const input = { symbol, side, size: check.size };
    const order = JSON.stringify(input);
    const key = keyForOrder(session.token, order, newIdempotencyKey);
    const outcome = await placeOrder(session.token, input, key);
    // The user logged out meanwhile (perhaps another one logged in): the answer belongs to no
    // one on this page, neither its order in the next user's list nor its 401 (the token was
    // revoked) ending the next user's session. A market switch changes nothing: same user.
    if (loadSession()?.token !== session.token) return;
    setBusy(null);
    if (isUndecided(outcome)) rememberUndecided(session.token, key, order);
    // 429: this attempt was refused before anything was stored; the first one's fate is still open.
    else if (outcome.ok || outcome.order !== null || outcome.error.status !== 429) forgetUndecided();
    if (outcome.order) onOrder(outcome.order);
    if (outcome.ok) {
      setResult(describe(outcome.order));
    } else if (outcome.order) {
      setResult(describe(outcome.order));
    } else if (outcome.error.status === 401) {
      onUnauthorized();
    } else if (isUndecided(outcome)) {
      setResult({
        kind: 'error',
        text:
          `${outcome.error.message}. The order may have gone through: ` +
          'placing the same order again will not place it twice.',
      });
    } else {
      setResult({ kind: 'error', text: outcome.error.message });
    }
  }

  const onSubmit = (event: FormEvent<HTMLFormElement>) => {
    event.preventDefault();
    // Enter in the field does nothing: which side to trade must be a deliberate click.
  };

  return (
    <section className="panel ticket" aria-label="Trade">
      <h2 className="panel-title">Market order</h2>
      <form onSubmit={onSubmit} noValidate>
        <label className="field">
          <span className="field-label">Size</span>
          <span className="input-with-unit">
            <input
              name="size"
              inputMode="decimal"
              autoComplete="off"
              placeholder="0.00"
              value={size}
              onChange={(e) => {
                setSize(e.target.value);
                setResult(null);
              }}
              onBlur={() => setTouched(true)}
              aria-invalid={showError}
              aria-describedby="size-hint"
              className="num"
            />
            <span className="unit">{symbol}</span>
          </span>
          <span className={`field-hint ${showError ? 'field-hint-error' : ''}`} id="size-hint">
            {showError && !check.ok ? check.message : 'Up to 9 decimals'}
          </span>
        </label>

        <dl className="rows">
          <div className="row">
            <dt>Price</dt>
            <dd className="num">{formatPrice(livePrice)}</dd>
          </div>
          <div className="row">
            <dt>Est. cost</dt>
            <dd className="num" data-testid="estimated-cost">
              {estimate ? formatUsd(estimate.notional) : '—'}
            </dd>
          </div>
          <div className="row">
            <dt>Est. fee ({feePercent})</dt>
            <dd className="num" data-testid="estimated-fee">
              {estimate ? formatFee(estimate.fee) : '—'}
            </dd>
          </div>
          <div className="row row-strong">
            <dt>Buy total · Sell proceeds</dt>
            <dd className="num">
              {estimate ? `${formatUsd(estimate.buyTotal)} · ${formatUsd(estimate.sellProceeds)}` : '—'}
            </dd>
          </div>
          <div className="row row-muted">
            <dt>Available</dt>
            <dd className="num">
              {formatAvailableUsd(usd)} USD · {formatSize(held ?? '0')} {symbol}
            </dd>
          </div>
        </dl>

        <div className="ticket-actions">
          <button type="button" className="btn btn-buy" disabled={!canTrade} onClick={() => void submit('buy')}>
            Buy
          </button>
          <button type="button" className="btn btn-sell" disabled={!canTrade} onClick={() => void submit('sell')}>
            Sell
          </button>
        </div>
      </form>
      <p
        className={`ticket-result small ${result ? `result-${result.kind}` : ''}`}
        aria-live="polite"
        data-testid="order-result"
      >
        {result
          ? result.text
          : busy
            ? 'Sending order…'
            : priceStale
              ? 'The price is stale; trading resumes with the next price.'
              : 'Fills at the market price when the order arrives.'}
      </p>
    </section>
  );
}
