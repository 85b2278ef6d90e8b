-- Ids and per-user counters become 64-bit. One ALTER TABLE per table, so each table is
-- rewritten once; existing rows keep their values. The serial sequences are widened too:
-- an int4 sequence stops at 2147483647 whatever the column's type.
ALTER TABLE "users" ALTER COLUMN "id" SET DATA TYPE bigint, ALTER COLUMN "order_seq" SET DATA TYPE bigint, ALTER COLUMN "portfolio_version" SET DATA TYPE bigint;--> statement-breakpoint
ALTER SEQUENCE "users_id_seq" AS bigint;--> statement-breakpoint
ALTER TABLE "sessions" ALTER COLUMN "user_id" SET DATA TYPE bigint;--> statement-breakpoint
ALTER TABLE "balances" ALTER COLUMN "user_id" SET DATA TYPE bigint;--> statement-breakpoint
ALTER TABLE "positions" ALTER COLUMN "user_id" SET DATA TYPE bigint;--> statement-breakpoint
ALTER TABLE "orders" ALTER COLUMN "id" SET DATA TYPE bigint, ALTER COLUMN "user_id" SET DATA TYPE bigint, ALTER COLUMN "seq" SET DATA TYPE bigint;--> statement-breakpoint
ALTER SEQUENCE "orders_id_seq" AS bigint;--> statement-breakpoint
ALTER TABLE "outbox" ALTER COLUMN "user_id" SET DATA TYPE bigint, ALTER COLUMN "position" SET DATA TYPE bigint;--> statement-breakpoint
CREATE INDEX "sessions_expires_at_idx" ON "sessions" USING btree ("expires_at");
