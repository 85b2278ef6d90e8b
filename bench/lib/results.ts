import type { LatencyStep, PrivateResult, ThroughputResult } from '../load/scenarios.ts';
import type { MachineInfo } from './machine.ts';
import type { ScaleResults } from './scale-results.ts';
import type { ServerName } from './servers.ts';

/** One repetition of one scenario on one server: its result, or why it failed. */
export type RunRecord<T> =
  | { rep: number; server: ServerName; ok: true; result: T }
  | { rep: number; server: ServerName; ok: false; error: string };

export interface IdleResult {
  clients: number;
  rssBefore: number;
  rssAfter: number;
  heapBefore: number;
  heapAfter: number;
  /** (RSS with the clients − RSS before them) / clients, bytes, both after a full GC. */
  rssPerConnection: number;
  heapPerConnection: number;
}

export interface EndToEndResult {
  rate: number;
  orders: number;
  p50: number | null;
  p99: number | null;
  max: number | null;
  /** Orders answered 2xx whose `order_filled` reached the user's socket. */
  delivered: number;
  /** Time to the HTTP 201 response: the API's share. */
  httpP50: number | null;
  httpP99: number | null;
  /** Orders the API refused or failed (non-2xx), by status. */
  httpErrors: Record<string, number>;
  wrongUser: number;
}

/** One fan-out throughput run; `symbols`: how many symbols the ticks went round (1: baseline). */
export type SymbolsRun = ThroughputResult & { symbols: number };

export interface Parameters {
  reps: number;
  throughput: { clients: number; window: number; warmupMs: number; measureMs: number };
  latency: {
    clients: number;
    rates: number[];
    warmupS: number;
    measureS: number;
    minEvents?: number;
    drainTimeoutMs: number;
    stopAboveP99Ms?: number;
  };
  /**
   * `reps`: repetitions of this scenario when more than the others' (its p99 ratio is the
   * noisiest figure: a few ms-long host stalls more or less in a window move it by half).
   */
  private: { users: number[]; rate: number; warmupS: number; measureS: number; reps?: number };
  idle: { clients: number; settleMs: number };
  e2e: { rate: number; users: number; warmupS: number; measureS: number };
  /**
   * `workers`: the `WS_WORKERS` values compared (fan-out throughput, `reps` each, interleaved);
   * the partitioned routing share: `gateways` gateways, `partitions` user partitions,
   * `partitionUsers` users, order events at `partitionRate`/s for `partitionMeasureS` s.
   */
  scale: {
    workers: number[];
    reps: number;
    gateways: number;
    partitions: number;
    partitionUsers: number;
    partitionRate: number;
    partitionMeasureS: number;
  };
}

export interface BenchResults {
  mode: 'full' | 'quick';
  command: string;
  startedAt: string;
  finishedAt?: string;
  machine: MachineInfo;
  params: Parameters;
  servers: ServerName[];
  /** How sessions were verified (DB-backed or the file table), and other caveats of this run. */
  notes: string[];
  throughput: RunRecord<ThroughputResult>[];
  latency: RunRecord<LatencyStep[]>[];
  private: RunRecord<PrivateResult>[];
  idle: RunRecord<IdleResult>[];
  e2e: RunRecord<EndToEndResult>[];
  /** tradewire's fan-out with every client on one symbol of 1 (the baseline) or of n. */
  symbols?: RunRecord<SymbolsRun>[];
  /** One gateway process against `WS_WORKERS`, and the partitioned routing share. */
  scale?: ScaleResults;
  /** Hot spots of the gateway from `--profile`, per scenario. */
  profiles: { scenario: string; file: string; top: { selfPct: number; name: string }[] }[];
}
