/**
 * The chart's candles for one market and interval: the history on open, extended by live
 * ticks, and fetched again after a gap (the SDK's `reconnected`, passed in as `refetchKey`, or
 * ticks arriving after a silence of `ARRIVAL_GAP_MS`), so what was missed meanwhile is filled
 * in from the server.
 */
import { useEffect, useMemo, useState } from 'react';
import { ApiError, getCandles } from './api.ts';
import { CandleSeries, type ChartInterval } from './candle-series.ts';
import type { PriceFeed } from './price-feed.ts';

/** Candles loaded with the chart: more than a screen's width of them. */
const HISTORY_CANDLES = 500;
const RETRY_MS = [500, 1000, 2000, 5000, 10_000];

/**
 * @param enabled false until the page knows the market exists (`GET /config`): no request for a
 *   symbol the server may refuse.
 * @param refetchKey any change fetches the history again.
 */
export function useCandleSeries(
  feed: PriceFeed,
  interval: ChartInterval,
  enabled: boolean,
  refetchKey: number,
): CandleSeries {
  const series = useMemo(() => new CandleSeries(feed.symbol, interval), [feed, interval]);
  const [gaps, setGaps] = useState(0);

  useEffect(() => {
    // What this page saw before the chart opened, until the history arrives.
    for (const tick of feed.recentTicks()) series.addTick(tick);
    return feed.onTick((tick, gap) => {
      series.addTick(tick);
      if (gap) setGaps((n) => n + 1);
    });
  }, [feed, series]);

  useEffect(() => {
    if (!enabled) return;
    let cancelled = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const load = (attempt: number) => {
      getCandles(series.symbol, series.interval.id, { limit: HISTORY_CANDLES }).then(
        (history) => {
          if (!cancelled) series.setHistory(history, feed.recentTicks());
        },
        (err: unknown) => {
          // A refusal (the server no longer trades the market) will not change by asking again.
          if (cancelled || (err instanceof ApiError && err.status >= 400 && err.status < 500 && err.status !== 429))
            return;
          // The live candles go on meanwhile; the history comes when the API answers.
          timer = setTimeout(() => load(attempt + 1), RETRY_MS[Math.min(attempt, RETRY_MS.length - 1)]);
        },
      );
    };
    load(0);
    return () => {
      cancelled = true;
      clearTimeout(timer);
    };
  }, [feed, series, enabled, refetchKey, gaps]);

  return series;
}
