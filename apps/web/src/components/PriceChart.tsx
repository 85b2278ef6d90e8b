/*
 * TradingView Lightweight Charts™
 * Copyright (c) 2025 TradingView, Inc. https://www.tradingview.com/
 * (The licence's attribution link is the "Chart by TradingView" line under the chart,
 * which lets the logo stay off the plot area where it covered the line.)
 */
import { useEffect, useRef } from 'react';
import { CandlestickSeries, ColorType, CrosshairMode, createChart, type UTCTimestamp } from 'lightweight-charts';
import type { Candle } from '../lib/api.ts';
import type { CandleSeries } from '../lib/candle-series.ts';

// Numbers only for the chart's axes (pixels); every figure shown as text uses the strings.
const toBar = (c: Candle) => ({
  time: (c.t / 1000) as UTCTimestamp,
  open: Number(c.o),
  high: Number(c.h),
  low: Number(c.l),
  close: Number(c.c),
});

/**
 * Until this many candles exist they are stretched across the chart; after that the spacing
 * stays and the chart scrolls, keeping the newest candle at the right edge.
 */
const FIT_ALL_UNTIL = 120;

const seconds = new Intl.DateTimeFormat(undefined, {
  hour: '2-digit',
  minute: '2-digit',
  second: '2-digit',
  hour12: false,
});
const minutes = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit', hour12: false });
const hours = new Intl.DateTimeFormat(undefined, {
  month: 'short',
  day: 'numeric',
  hour: '2-digit',
  minute: '2-digit',
  hour12: false,
});

/** Two decimals for most prices; more for prices below 1, so a small coin still shows its moves. */
const formatAxisPrice = (price: number) => price.toFixed(Math.abs(price) >= 1 || price === 0 ? 2 : 6);

/**
 * The candlestick chart of one series. Changes go straight from the series to the chart
 * (`update`), outside React's render, so a tick costs one chart update and no re-render.
 * The container says what is drawn, for tests and curious people in devtools: `data-candles`
 * (how many), `data-first` and `data-last` (their open times in ms), `data-loaded` (history in).
 */
export function PriceChart({ series }: { series: CandleSeries }) {
  const container = useRef<HTMLDivElement>(null);

  useEffect(() => {
    const el = container.current;
    if (!el) return;
    const format = series.interval.ms < 60_000 ? seconds : series.interval.ms < 3_600_000 ? minutes : hours;
    const chart = createChart(el, {
      autoSize: true,
      layout: {
        background: { type: ColorType.Solid, color: 'transparent' },
        textColor: '#8a93a6',
        fontSize: 11,
        fontFamily: 'ui-sans-serif, system-ui, -apple-system, "Segoe UI", Roboto, sans-serif',
        attributionLogo: false,
      },
      grid: { vertLines: { color: 'rgba(255,255,255,0.04)' }, horzLines: { color: 'rgba(255,255,255,0.04)' } },
      rightPriceScale: { borderVisible: false, scaleMargins: { top: 0.15, bottom: 0.1 } },
      timeScale: {
        borderVisible: false,
        timeVisible: true,
        secondsVisible: series.interval.ms < 60_000,
        rightOffset: 1,
      },
      crosshair: { mode: CrosshairMode.Magnet },
      localization: {
        timeFormatter: (time: number) => format.format(new Date(time * 1000)),
        priceFormatter: formatAxisPrice,
      },
      handleScroll: { vertTouchDrag: false },
    });
    const bars = chart.addSeries(CandlestickSeries, {
      upColor: '#16c784',
      downColor: '#f6465d',
      borderVisible: false,
      wickUpColor: '#16c784',
      wickDownColor: '#f6465d',
      priceLineColor: '#4c8dff',
      priceLineStyle: 2,
      lastValueVisible: true,
    });

    const mark = () => {
      const all = series.candles();
      el.setAttribute('data-candles', String(all.length));
      el.setAttribute('data-first', String(all[0]?.t ?? ''));
      el.setAttribute('data-last', String(all.at(-1)?.t ?? ''));
      el.setAttribute('data-loaded', String(series.loaded));
      if (all.length <= FIT_ALL_UNTIL) chart.timeScale().fitContent();
    };
    const redraw = () => {
      bars.setData(series.candles().map(toBar));
      mark();
    };
    redraw();

    // A resize keeps the bar spacing; while the history is short, stretch it again.
    const onResize = () => {
      if (Number(el.getAttribute('data-candles')) <= FIT_ALL_UNTIL) chart.timeScale().fitContent();
    };
    chart.timeScale().subscribeSizeChange(onResize);

    const off = series.onChange((change) => {
      if (change.kind === 'reset') return redraw();
      bars.update(toBar(change.candle));
      const last = el.getAttribute('data-last');
      if (last !== String(change.candle.t)) mark();
    });
    return () => {
      off();
      chart.timeScale().unsubscribeSizeChange(onResize);
      chart.remove();
    };
  }, [series]);

  return (
    <figure className="chart-figure">
      <div
        ref={container}
        className="chart"
        data-testid="price-chart"
        data-candles="0"
        data-symbol={series.symbol}
        data-interval={series.interval.id}
        role="img"
        aria-label={`${series.symbol}/USD price chart, ${series.interval.name} candles`}
      />
      <figcaption className="chart-credit">
        Chart by{' '}
        <a href="https://www.tradingview.com/" target="_blank" rel="noopener noreferrer">
          TradingView
        </a>
      </figcaption>
    </figure>
  );
}
