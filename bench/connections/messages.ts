/**
 * What the connections benchmark's coordinator and its load processes say to each other over
 * the IPC channel. Times are `monoMs()` (CLOCK_MONOTONIC, the same in every process).
 */

export interface LoadConfig {
  host: string;
  port: number;
  /** Loopback source addresses; the process's clients are spread over them round-robin. */
  addresses: string[];
  clients: number;
  /** Upgrades in flight at once during the initial open (the reconnect storm has no cap). */
  openConcurrency: number;
}

export type ToLoad =
  | { type: 'open' }
  /** Clear the receipt times: tick `seq` comes next. */
  | { type: 'expect'; seq: number }
  /** Report the receipt times of the expected tick. */
  | { type: 'collect' }
  /** Report the counters; with `times`, also when each (re)subscribe since the storm began happened. */
  | { type: 'status'; times: boolean }
  /** Start counting the storm from zero: every close from now on is the storm's. */
  | { type: 'storm' }
  | { type: 'close' };

export interface Counters {
  /** Clients subscribed right now. */
  subscribed: number;
  /** Closes the client did not ask for, by close code. */
  closes: Record<string, number>;
  /** Upgrade attempts that failed (refused, reset, HTTP status, timeout), by cause. */
  failures: Record<string, number>;
  /** Failed attempts followed by a scheduled retry (every failure must be). */
  retried: number;
  /** Upgrade attempts started. */
  attempts: number;
  /** Pings answered (the gateway's heartbeat). */
  pings: number;
  /**
   * Abnormal closes (1006) of subscribed sockets, by what the socket last saw of the heartbeat:
   * when its last ping came, and whether its pong had been written. Tells a ping that never
   * arrived from a pong that did not count.
   */
  abnormal: Record<string, number>;
}

/** Counters at zero: a load process's start, and the sum the coordinator adds up from. */
export function emptyCounters(): Counters {
  return { subscribed: 0, closes: {}, failures: {}, retried: 0, attempts: 0, pings: 0, abnormal: {} };
}

export type FromLoad =
  | { type: 'ready' }
  /** Every client subscribed; `times` is when each got its `subscribed` reply. */
  | { type: 'opened'; startedAt: number; times: number[]; counters: Counters }
  | { type: 'receipts'; seq: number; times: number[]; missing: number }
  | {
      type: 'status';
      counters: Counters;
      subscribeTimes: number[];
      /** The process's own CPU time (user + system) so far, ms: a late reply from a busy process or a starved one. */
      cpuMs: number;
      /** The longest event-loop delay since the previous status, ms. */
      loopDelayMaxMs: number;
    }
  | { type: 'error'; message: string };

/** How `loop-delay-hook.ts` starts its stderr lines in the gateway node's processes: `<prefix> <pid> <ms>`. */
export const LOOP_DELAY_LINE = 'tradewire-bench loop-delay';
