import type { OrderView, Session } from '../lib/api.ts';
import { formatExact, formatSize } from '../lib/money.ts';
import { reasonText } from '../lib/reasons.ts';

const timeFormat = new Intl.DateTimeFormat(undefined, {
  hour: '2-digit',
  minute: '2-digit',
  second: '2-digit',
  hour12: false,
});
const dateFormat = new Intl.DateTimeFormat(undefined, {
  year: 'numeric',
  month: 'short',
  day: 'numeric',
  hour: '2-digit',
  minute: '2-digit',
  second: '2-digit',
});

function when(timestamp: string | null): { short: string; full: string } {
  const d = timestamp ? new Date(timestamp) : null;
  if (!d || Number.isNaN(d.getTime())) return { short: '—', full: '' };
  return { short: timeFormat.format(d), full: dateFormat.format(d) };
}

const STATUS_TEXT = { filled: 'Filled', rejected: 'Rejected', pending: 'Pending' } as const;

/** The user's orders, newest first; a rejected order carries its reason. */
export function OrdersPanel({
  session,
  orders,
  loading,
  error,
}: {
  session: Session | null;
  orders: OrderView[];
  loading: boolean;
  error: string | null;
}) {
  return (
    <section className="panel orders" aria-label="Orders">
      <div className="panel-head">
        <h2 className="panel-title">Orders</h2>
        {session && <span className="muted small num">{orders.length === 0 ? '' : `${orders.length} shown`}</span>}
      </div>
      {error && <p className="form-error small">{error}</p>}
      {!session ? (
        <p className="empty muted">Log in to see your orders.</p>
      ) : orders.length === 0 ? (
        <p className="empty muted">{loading ? 'Loading…' : 'No orders yet. Place one from the order ticket.'}</p>
      ) : (
        <div className="table-wrap">
          <table className="orders-table">
            <thead>
              <tr>
                <th scope="col" className="col-time">
                  Time
                </th>
                <th scope="col" className="col-market">
                  Market
                </th>
                <th scope="col" className="col-side">
                  Side
                </th>
                <th scope="col" className="right col-size">
                  Size
                </th>
                <th scope="col" className="right col-price">
                  Price
                </th>
                <th scope="col" className="right col-fee">
                  Fee
                </th>
                <th scope="col" className="right col-status">
                  Status
                </th>
              </tr>
            </thead>
            <tbody>
              {orders.map((order) => {
                const t = when(order.timestamp);
                return (
                  <tr
                    key={order.orderId}
                    data-order-id={order.orderId}
                    data-status={order.status}
                    className={`order order-${order.status}`}
                  >
                    <td className="col-time num">
                      <time dateTime={order.timestamp ?? undefined} title={t.full}>
                        {t.short}
                      </time>
                    </td>
                    <td className="col-market">{order.symbol}</td>
                    <td className="col-side">
                      <span className={`side side-${order.side ?? 'unknown'}`}>
                        {order.side === 'sell' ? 'Sell' : order.side === 'buy' ? 'Buy' : '—'}
                      </span>
                    </td>
                    <td className="right num col-size" data-symbol={order.symbol}>
                      {formatSize(order.size)}
                    </td>
                    <td className="right num col-price">
                      {order.status === 'filled' ? formatExact(order.price) : '—'}
                    </td>
                    <td className="right num col-fee">{order.status === 'filled' ? formatExact(order.fee) : '—'}</td>
                    <td className="right col-status">
                      <span className={`badge badge-${order.status}`}>{STATUS_TEXT[order.status]}</span>
                      {order.status === 'rejected' && (
                        <span className="reason" data-reason={order.reason ?? ''}>
                          {reasonText(order.reason)}
                        </span>
                      )}
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}
