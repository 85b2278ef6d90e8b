/**
 * A small SVG line chart (no dependencies): latency against event rate, one colour per server,
 * p99 solid and p50 dashed, log-scaled latency axis, the 50 ms target as a line. Points that
 * never completed (lost deliveries, or a rate not reached because a lower one overloaded the
 * server) are drawn as open circles on the top edge.
 */

export interface Series {
  label: string;
  color: string;
  /** Latency per rate, ms; null = never delivered / not sustained. */
  p99: (number | null)[];
  p50: (number | null)[];
}

const WIDTH = 760;
const HEIGHT = 440;
const MARGIN = { left: 70, right: 200, top: 40, bottom: 60 };
const Y_MIN = 0.1;
const Y_MAX = 100_000;

const escape = (text: string) => text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

export function latencyChart(title: string, rates: number[], series: Series[], targetMs = 50): string {
  const plotW = WIDTH - MARGIN.left - MARGIN.right;
  const plotH = HEIGHT - MARGIN.top - MARGIN.bottom;
  const x = (i: number) => MARGIN.left + (rates.length === 1 ? plotW / 2 : (i * plotW) / (rates.length - 1));
  const y = (ms: number) => {
    const clamped = Math.min(Y_MAX, Math.max(Y_MIN, ms));
    const t = (Math.log10(clamped) - Math.log10(Y_MIN)) / (Math.log10(Y_MAX) - Math.log10(Y_MIN));
    return MARGIN.top + plotH * (1 - t);
  };
  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${HEIGHT}" viewBox="0 0 ${WIDTH} ${HEIGHT}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${MARGIN.left}" y="22" font-size="15" font-weight="bold">${escape(title)}</text>`,
  );
  // Grid and axes.
  for (let exp = Math.log10(Y_MIN); exp <= Math.log10(Y_MAX); exp++) {
    const value = 10 ** exp;
    const yy = y(value).toFixed(1);
    const label = value >= 1000 ? `${value / 1000} s` : `${value} ms`;
    out.push(
      `<line x1="${MARGIN.left}" y1="${yy}" x2="${MARGIN.left + plotW}" y2="${yy}" stroke="#e5e5e5"/>`,
      `<text x="${MARGIN.left - 8}" y="${yy}" text-anchor="end" dominant-baseline="middle" fill="#555">${label}</text>`,
    );
  }
  rates.forEach((rate, i) => {
    const xx = x(i).toFixed(1);
    out.push(
      `<line x1="${xx}" y1="${MARGIN.top}" x2="${xx}" y2="${MARGIN.top + plotH}" stroke="#f0f0f0"/>`,
      `<text x="${xx}" y="${MARGIN.top + plotH + 18}" text-anchor="middle" fill="#555">${rate}</text>`,
    );
  });
  out.push(
    `<text x="${MARGIN.left + plotW / 2}" y="${HEIGHT - 18}" ` +
      `text-anchor="middle">events per second (to 1,000 subscribers each)</text>`,
    `<text transform="translate(18 ${MARGIN.top + plotH / 2}) rotate(-90)" ` +
      `text-anchor="middle">publish → receive latency (log scale)</text>`,
    `<rect x="${MARGIN.left}" y="${MARGIN.top}" width="${plotW}" height="${plotH}" fill="none" stroke="#999"/>`,
  );
  const ty = y(targetMs).toFixed(1);
  out.push(
    `<line x1="${MARGIN.left}" y1="${ty}" ` +
      `x2="${MARGIN.left + plotW}" y2="${ty}" stroke="#d62728" stroke-dasharray="2 3"/>`,
    `<text x="${MARGIN.left + plotW - 4}" y="${Number(ty) - 5}" ` +
      `text-anchor="end" fill="#d62728">p99 target ${targetMs} ms</text>`,
  );
  // Lines: consecutive finite points are joined; a missing point breaks the line.
  const line = (values: (number | null)[], color: string, dashed: boolean) => {
    let path = '';
    let pen = false;
    values.forEach((v, i) => {
      // NaN: a rate the server did not reach (it stopped past its knee): no point at all.
      if (v === null || Number.isNaN(v)) {
        pen = false;
        return;
      }
      path += `${pen ? 'L' : 'M'}${x(i).toFixed(1)} ${y(v).toFixed(1)} `;
      pen = true;
    });
    if (path)
      out.push(
        `<path d="${path.trim()}" fill="none" stroke="${color}" ` +
          `stroke-width="${dashed ? 1.5 : 2.5}"${dashed ? ' stroke-dasharray="6 4"' : ''}/>`,
      );
    values.forEach((v, i) => {
      const cx = x(i).toFixed(1);
      if (Number.isNaN(v)) return;
      if (v === null) {
        if (!dashed)
          out.push(`<circle cx="${cx}" cy="${MARGIN.top + 4}" r="4" fill="white" stroke="${color}" stroke-width="2"/>`);
      } else if (!dashed) out.push(`<circle cx="${cx}" cy="${y(v).toFixed(1)}" r="3.5" fill="${color}"/>`);
    });
  };
  for (const s of series) {
    line(s.p50, s.color, true);
    line(s.p99, s.color, false);
  }
  // Legend.
  const lx = MARGIN.left + plotW + 16;
  series.forEach((s, i) => {
    const ly = MARGIN.top + 10 + i * 22;
    out.push(
      `<line x1="${lx}" y1="${ly}" x2="${lx + 24}" y2="${ly}" stroke="${s.color}" stroke-width="2.5"/>`,
      `<text x="${lx + 30}" y="${ly}" dominant-baseline="middle">${escape(s.label)}</text>`,
    );
  });
  const ky = MARGIN.top + 20 + series.length * 22;
  out.push(
    `<text x="${lx}" y="${ky}" fill="#555">solid: p99, dashed: p50</text>`,
    `<text x="${lx}" y="${ky + 16}" fill="#555">(median of the repetitions)</text>`,
    `<circle cx="${lx + 5}" cy="${ky + 36}" r="4" fill="white" stroke="#555" stroke-width="2"/>`,
    `<text x="${lx + 14}" y="${ky + 36}" dominant-baseline="middle" fill="#555">not sustained (lost or</text>`,
    `<text x="${lx + 14}" y="${ky + 52}" dominant-baseline="middle" fill="#555">overloaded at a lower rate)</text>`,
    '</svg>',
  );
  return `${out.join('\n')}\n`;
}
