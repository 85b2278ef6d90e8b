-- A filled market buy as bare SQL, one statement per step, as the order transaction ran it
-- statement by statement: lock the user, the quote balance and the base position; update the
-- balance, the position and the user's counters; insert the order and its two outbox rows
-- (the order event, then the portfolio event built from the holdings read back).
-- pgbench -n -M prepared -f place-order-statements.sql -D users=1000 ...
\set uid random(1, :users)
BEGIN;
SELECT id FROM users WHERE id = :uid FOR UPDATE;
SELECT available FROM balances WHERE user_id = :uid AND asset = 'USD' FOR UPDATE;
SELECT size, avg_entry_price FROM positions WHERE user_id = :uid AND asset = 'SOL' FOR UPDATE;
UPDATE balances SET available = available - 2.314731450 WHERE user_id = :uid AND asset = 'USD';
UPDATE positions SET size = size + 0.01, avg_entry_price = 231.45 WHERE user_id = :uid AND asset = 'SOL';
UPDATE users SET order_seq = order_seq + 1, portfolio_version = portfolio_version + 1 WHERE id = :uid
  RETURNING order_seq AS seq, portfolio_version AS ver \gset
INSERT INTO orders (user_id, symbol, side, requested_size, status, executed_price, executed_size, fee, seq, created_at)
  VALUES (:uid, 'SOL', 'buy', 0.01, 'filled', 231.45, 0.01, 0.00023145, :seq, now()) RETURNING id AS oid \gset
INSERT INTO outbox (user_id, kind, position, payload) VALUES (:uid, 'order_filled', :seq, jsonb_build_object(
  'userId', :uid::bigint, 'orderId', :oid::bigint, 'side', 'buy', 'baseAsset', 'SOL', 'quoteAsset', 'USD', 'executedPrice', '231.45',
  'executedSize', '0.01', 'fee', '0.00023145', 'timestamp', '2026-11-28T23:00:00.000Z', 'seq', :seq::bigint));
SELECT asset, available, locked FROM balances WHERE user_id = :uid ORDER BY asset;
SELECT asset, size, avg_entry_price FROM positions WHERE user_id = :uid ORDER BY asset;
INSERT INTO outbox (user_id, kind, position, payload) VALUES (:uid, 'portfolio', :ver, jsonb_build_object(
  'userId', :uid::bigint, 'balances', '[{"asset":"USD","available":"9997.68526855","locked":"0"}]'::jsonb,
  'positions', '[{"asset":"SOL","size":"0.01","avgEntryPrice":"231.45"}]'::jsonb,
  'timestamp', '2026-11-28T23:00:00.000Z', 'version', :ver::bigint, 'orderSeq', :seq::bigint));
COMMIT;
