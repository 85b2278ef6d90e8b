import { useEffect, useRef, useState, type FormEvent } from 'react';
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
import {
  describeOrder,
  forgetUndecided,
  keyForOrder,
  rememberUndecided,
  settleUndecided,
} from '../lib/undecided-order.ts';
import {
  checkSize,
  estimateOrder,
  formatAvailableUsd,
  formatExact,
  formatPrice,
  formatSize,
  formatUsd,
  times,
} from '../lib/money.ts';

type Side = 'buy' | 'sell';
/** `undecided`: the text says the order may have gone through; it changes once its fate is known. */
type Result = { kind: 'filled' | 'rejected' | 'error' | 'earlier'; text: string; undecided?: boolean };

function fillText(order: OrderView): string {
  const verb = order.side === 'sell' ? 'Sold' : 'Bought';
  return (
    `${verb} ${formatSize(order.size)} ${order.symbol} at ${formatExact(order.price)}` +
    ` · fee ${formatExact(order.fee)} USD`
  );
}

function describe(order: OrderView): Result {
  if (order.status === 'rejected') return { kind: 'rejected', text: `Rejected: ${reasonText(order.reason)}` };
  return { kind: 'filled', text: fillText(order) };
}

/**
 * An order placed earlier whose fate was unknown, now known. `replayed`: the server answered a
 * new click with it and executed nothing; said plainly, or the user takes it for a second fill.
 */
function describeEarlier(order: OrderView, replayed: boolean): Result {
  const outcome =
    order.status === 'rejected' ? `was rejected: ${reasonText(order.reason)}` : `had gone through: ${fillText(order)}`;
  return {
    kind: 'earlier',
    text: `Your earlier order #${order.orderId} ${outcome}.${replayed ? ' Nothing new was placed.' : ''}`,
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
  orders,
  latestSeq,
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
  /** The user's orders as the page shows them: where the fate of an unanswered order shows up. */
  orders: OrderView[];
  /** The user's latest order `seq` the page knows of; null until the orders are loaded. */
  latestSeq: number | null;
  onOrder: (order: OrderView) => void;
  onUnauthorized: () => void;
}) {
  const [size, setSize] = useState('');
  const [touched, setTouched] = useState(false);
  const [busy, setBusy] = useState<Side | null>(null);
  const [result, setResult] = useState<Result | null>(null);
  const ordersRef = useRef(orders);
  ordersRef.current = orders;

  // An unanswered order that shows up in the list has a known fate: its key is freed, so the
  // same order placed later is a new order rather than a replay of this one.
  useEffect(() => {
    const settled = settleUndecided(session.token, orders);
    if (settled) setResult((shown) => (shown?.undecided ? describeEarlier(settled, false) : shown));
  }, [orders, session.token]);

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
    // order while its fate is unknown, so it executes once.
    const input = { symbol, side, size: check.size };
    const order = describeOrder(input);
    const key = keyForOrder(session.token, order, newIdempotencyKey);
    const afterSeq = latestSeq;
    const outcome = await placeOrder(session.token, input, key);
    // The user logged out meanwhile (perhaps another one logged in): the answer belongs to no
    // one on this page, neither its order in the next user's list nor its 401 (the token was
    // revoked) ending the next user's session. A market switch changes nothing: same user.
    if (loadSession()?.token !== session.token) return;
    setBusy(null);
    if (isUndecided(outcome)) rememberUndecided(session.token, key, order, afterSeq);
    // 429: this attempt was refused before anything was stored; the first one's fate is still open.
    else if (outcome.ok || outcome.order !== null || outcome.error.status !== 429) forgetUndecided();
    if (outcome.order) onOrder(outcome.order);
    if (outcome.order) {
      setResult(outcome.replayed ? describeEarlier(outcome.order, true) : describe(outcome.order));
    } else if (outcome.error.status === 401) {
      onUnauthorized();
    } else if (isUndecided(outcome)) {
      // Its event may have come over the socket before the answer failed.
      const settled = settleUndecided(session.token, ordersRef.current);
      setResult(
        settled
          ? describeEarlier(settled, false)
          : {
              kind: 'error',
              undecided: true,
              text:
                `${outcome.error.message}. The order may have gone through: ` +
                'placing the same order again will not place it twice.',
            },
      );
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
              {estimate ? formatExact(estimate.fee) : '—'}
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
