-- A filled market buy as bare SQL, in the two statements the API runs now and no BEGIN or
-- COMMIT: one read of the user's counters, holdings and idempotency key (one snapshot, no lock),
-- then one statement that writes the balance, the position, the counters, the order and its two
-- outbox rows only if the user's order_seq is still the one read (a single statement commits on
-- its own). The 'u' row sorts last, so \aset keeps the counters. The API's two statements also
-- check the order's session (a primary-key probe of sessions in each); this script leaves
-- that out (it would need a session id per user seeded for pgbench), so it is a little cheaper
-- than what the API runs.
-- pgbench -n -M prepared -f place-order-optimistic.sql -D users=1000 ...
\set uid random(1, :users)
SELECT 'u' AS kind, NULL AS asset, order_seq::text AS a, portfolio_version::text AS b FROM users WHERE id = :uid
UNION ALL
SELECT 'b', asset, available::text, locked::text FROM balances WHERE user_id = :uid
UNION ALL
SELECT 'p', asset, size::text, avg_entry_price::text FROM positions WHERE user_id = :uid
UNION ALL
SELECT 'k', order_id::text, request_hash, (created_at >= now() - interval '1 day')::text
  FROM idempotency_keys WHERE user_id = :uid AND key = NULL
ORDER BY kind, asset \aset
\set seq :a + 1
\set ver :b + 1
WITH u AS (
  UPDATE users SET order_seq = :seq, portfolio_version = :ver WHERE id = :uid AND order_seq = :seq - 1
  RETURNING id),
b AS (
  UPDATE balances SET available = available - 2.314731450
   WHERE user_id = :uid AND asset = 'USD' AND EXISTS (SELECT FROM u)),
p AS (
  UPDATE positions SET size = size + 0.01, avg_entry_price = 231.45
   WHERE user_id = :uid AND asset = 'SOL' AND EXISTS (SELECT FROM u)),
o AS (
  INSERT INTO orders (user_id, symbol, side, requested_size, status, executed_price, executed_size, fee, seq, created_at)
  SELECT :uid, 'SOL', 'buy', 0.01, 'filled', 231.45, 0.01, 0.00023145, :seq, now() FROM u
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
         'timestamp', '2026-11-28T23:00:00.000Z', 'version', :ver::bigint, 'orderSeq', :seq::bigint)
    FROM o),
k AS (
  INSERT INTO idempotency_keys (user_id, key, request_hash, order_id, created_at)
  SELECT :uid, NULL, NULL, o.id, now() FROM o WHERE NULL::text IS NOT NULL)
SELECT id FROM o;
