/*
 * TradingView Lightweight Charts™
 * Copyright (c) 2025 TradingView, Inc. https://www.tradingview.com/
 * (The licence's attribution link is the "Chart by TradingView" line under the chart,
 * which lets the logo stay off the plot area where it covered the line.)
 */
import { useEffect, useRef } from 'react';
import { AreaSeries, ColorType, CrosshairMode, createChart, type UTCTimestamp } from 'lightweight-charts';
import type { ChartPoint, PriceFeed } from '../lib/price-feed.ts';

const toSeries = (p: ChartPoint) => ({ time: p.time as UTCTimestamp, value: p.value });

/**
 * Until this many points exist the whole history is stretched across the chart; after that
 * the spacing stays and the chart scrolls, keeping the newest point at the right edge.
 */
const FIT_ALL_UNTIL = 120;

const timeFormat = new Intl.DateTimeFormat(undefined, {
  hour: '2-digit',
  minute: '2-digit',
  second: '2-digit',
  hour12: false,
});

/**
 * The live area chart. Points go straight from the feed to the series (`update`), outside
 * React's render, so a tick costs one chart update and no re-render. `data-points` on the
 * container tells tests (and curious people in devtools) how many points are drawn.
 */
export function PriceChart({ feed }: { feed: PriceFeed }) {
  const container = useRef<HTMLDivElement>(null);

  useEffect(() => {
    const el = container.current;
    if (!el) return;
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
      timeScale: { borderVisible: false, timeVisible: true, secondsVisible: true, rightOffset: 1 },
      crosshair: { mode: CrosshairMode.Magnet },
      localization: {
        timeFormatter: (time: number) => timeFormat.format(new Date(time * 1000)),
        priceFormatter: (price: number) => price.toFixed(2),
      },
      handleScroll: { vertTouchDrag: false },
    });
    const series = chart.addSeries(AreaSeries, {
      lineColor: '#4c8dff',
      lineWidth: 2,
      topColor: 'rgba(76,141,255,0.28)',
      bottomColor: 'rgba(76,141,255,0.02)',
      priceLineColor: '#4c8dff',
      priceLineStyle: 2,
      lastValueVisible: true,
    });
    let count = 0;
    const mark = () => {
      el.setAttribute('data-points', String(count));
      if (count <= FIT_ALL_UNTIL) chart.timeScale().fitContent();
    };

    const initial = feed.points();
    series.setData(initial.map(toSeries));
    count = initial.length;
    mark();

    // A resize keeps the bar spacing; while the history is short, stretch it again.
    const onResize = () => {
      if (count <= FIT_ALL_UNTIL) chart.timeScale().fitContent();
    };
    chart.timeScale().subscribeSizeChange(onResize);

    const off = feed.onPoint((point, reset) => {
      if (reset) {
        const all = feed.points();
        series.setData(all.map(toSeries));
        count = all.length;
      } else {
        series.update(toSeries(point));
        count += 1;
      }
      mark();
    });
    return () => {
      off();
      chart.timeScale().unsubscribeSizeChange(onResize);
      chart.remove();
    };
  }, [feed]);

  return (
    <figure className="chart-figure">
      <div
        ref={container}
        className="chart"
        data-testid="price-chart"
        data-points="0"
        role="img"
        aria-label="SOL price chart since the page opened"
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
