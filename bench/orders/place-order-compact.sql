-- A filled market buy as bare SQL, in the four statements the order transaction runs: one
-- SELECT ... FOR UPDATE locking the user, the quote balance and the base position; the
-- holdings read for the portfolio event; one statement writing the balance, the position, the
-- user's counters, the order and its two outbox rows.
-- pgbench -n -M prepared -f place-order-compact.sql -D users=1000 ...
\set uid random(1, :users)
BEGIN;
SELECT u.order_seq + 1 AS seq, u.portfolio_version + 1 AS ver, b.available::text AS available,
       p.size::text AS size, p.avg_entry_price::text AS avg
  FROM users u
  JOIN balances b ON b.user_id = u.id AND b.asset = 'USD'
  JOIN positions p ON p.user_id = u.id AND p.asset = 'SOL'
 WHERE u.id = :uid
   FOR UPDATE \gset
SELECT 'b' AS kind, asset, available::text AS a, locked::text AS b FROM balances WHERE user_id = :uid
UNION ALL
SELECT 'p' AS kind, asset, size::text AS a, avg_entry_price::text AS b FROM positions WHERE user_id = :uid
ORDER BY kind, asset;
WITH b AS (
  UPDATE balances SET available = available - 2.314731450 WHERE user_id = :uid AND asset = 'USD'),
p AS (
  UPDATE positions SET size = size + 0.01, avg_entry_price = 231.45 WHERE user_id = :uid AND asset = 'SOL'),
u AS (
  UPDATE users SET order_seq = :seq, portfolio_version = :ver WHERE id = :uid),
o AS (
  INSERT INTO orders (user_id, symbol, side, requested_size, status, executed_price, executed_size, fee, seq, created_at)
  VALUES (:uid, 'SOL', 'buy', 0.01, 'filled', 231.45, 0.01, 0.00023145, :seq, now())
  RETURNING id),
e AS (
  INSERT INTO outbox (user_id, kind, position, payload)
  SELECT :uid::bigint, 'order_filled', :seq::bigint, jsonb_set(jsonb_build_object('userId', :uid::bigint, 'side', 'buy', 'baseAsset', 'SOL',
         'quoteAsset', 'USD', 'executedPrice', '231.45', 'executedSize', '0.01', 'fee', '0.00023145',
         'timestamp', '2026-11-28T23:00:00.000Z', 'seq', :seq::bigint), '{orderId}', to_jsonb(o.id))
    FROM o
  UNION ALL
  SELECT :uid::bigint, 'portfolio', :ver::bigint, jsonb_build_object('userId', :uid::bigint,
         'balances', '[{"asset":"USD","available":"9997.68526855","locked":"0"}]'::jsonb,
         'positions', '[{"asset":"SOL","size":"0.01","avgEntryPrice":"231.45"}]'::jsonb,
         'timestamp', '2026-11-28T23:00:00.000Z', 'version', :ver::bigint, 'orderSeq', :seq::bigint))
SELECT id FROM o;
COMMIT;
