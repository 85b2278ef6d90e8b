CREATE TABLE "candles" (
	"symbol" text NOT NULL,
	"interval" text NOT NULL,
	"open_time_ms" bigint NOT NULL,
	"open" numeric NOT NULL,
	"high" numeric NOT NULL,
	"low" numeric NOT NULL,
	"close" numeric NOT NULL,
	CONSTRAINT "candles_symbol_interval_open_time_ms_pk" PRIMARY KEY("symbol","interval","open_time_ms"),
	CONSTRAINT "candles_interval_valid" CHECK ("candles"."interval" in ('1s', '1m', '1h')),
	CONSTRAINT "candles_low_bounds" CHECK ("candles"."low" > 0 and "candles"."low" <= least("candles"."open", "candles"."close")),
	CONSTRAINT "candles_high_bounds" CHECK ("candles"."high" >= greatest("candles"."open", "candles"."close"))
);
--> statement-breakpoint
CREATE INDEX "candles_interval_open_time_idx" ON "candles" USING btree ("interval","open_time_ms");