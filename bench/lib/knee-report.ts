import type { LatencyStep } from '../load/scenarios.ts';
import { mdTable, paragraph } from './md.ts';
import { formatNumber as fmt, formatMs as ms, LATENCY_TARGET_MS, sustainedRate } from './report.ts';
import type { BenchResults } from './results.ts';
import { SERVERS } from './servers.ts';
import { median } from './stats.ts';

/**
 * The fan-out latency knee per server: the highest rate whose p99 (with every lower rate's)
 * stayed under the target, per repetition and as the median, with the first rate past it.
 */
export function renderKnee(results: BenchResults): string | null {
  if (results.latency.length === 0) return null;
  const rates = results.params.latency.rates;
  const clients = results.params.latency.clients;
  const rows: string[][] = [];
  for (const server of results.servers) {
    const runs = results.latency.filter((r) => r.server === server);
    if (runs.length === 0) continue;
    const knees: number[] = [];
    const cells = runs.map((r) => {
      if (!r.ok) return `rep ${r.rep}: failed`;
      const knee = sustainedRate(r.result, rates);
      knees.push(knee);
      const past = r.result.find((step) => step.rate > knee);
      // Under the target at the ladder's top: the knee is at least that rate, not that rate.
      const detail = past ? `${fmt(past.rate)}/s: ${describe(past)}` : 'every rate tested';
      return `rep ${r.rep}: ${atLeast(knee, rates)}${fmt(knee)}/s (${detail})`;
    });
    const waits = runs.flatMap((r) => (r.ok ? r.result.map((step) => step.serverWaitPct) : []));
    rows.push([
      SERVERS[server].label,
      `**${atLeast(median(knees), rates)}${fmt(median(knees))}/s**`,
      cells.join('; '),
      waits.length ? `${fmt(Math.max(...waits))}%` : '—',
    ]);
  }
  const tradewire = results.latency.filter((r) => r.server === 'tradewire' && r.ok);
  const twKnee = median(tradewire.map((r) => (r.ok ? sustainedRate(r.result, rates) : 0)));
  const verdict =
    tradewire.length === 0
      ? 'not measured'
      : `**${twKnee >= 1000 ? 'met' : 'not met'}** (${atLeast(twKnee, rates)}${fmt(twKnee)}/s)`;
  return [
    '## Fan-out latency knee',
    '',
    paragraph(
      `The highest rate at which each server kept p99 under ${LATENCY_TARGET_MS} ms (publish → receipt, every`,
      `delivery of the measured events, nothing lost) at ${fmt(clients)} subscribers, and every lower rate too.`,
      `Ladder: ${rates.join(', ')} events/s; a server two steps past the knee stops climbing.`,
      `Target: tradewire ≥ 1,000 events/s: ${verdict}. "Server wait" is the largest share of a step's window`,
      'the server waited for a CPU (other processes on this shared machine); a step with a high wait measures',
      'the machine, not the server.',
    ),
    '',
    mdTable(
      [
        'Server',
        'Knee (median)',
        'Each repetition (first rate past the knee: p50 / p99 ms, server CPU %, wait %)',
        'Largest server wait',
      ],
      rows,
    ),
  ].join('\n');
}

/** "≥ " when `knee` is the ladder's highest rate: the server was not pushed past it. */
function atLeast(knee: number, rates: readonly number[]): string {
  return rates.length > 0 && knee >= Math.max(...rates) ? '≥ ' : '';
}

function describe(step: LatencyStep): string {
  const lost = step.lost > 0 ? `, ${fmt(step.lost)} lost` : '';
  return `${ms(step.p50)} / ${ms(step.p99)}, ${fmt(step.serverCpuPct)}% CPU, ${fmt(step.serverWaitPct)}% wait${lost}`;
}
