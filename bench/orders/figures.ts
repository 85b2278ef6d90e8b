import { median, msOrNull, round2, summariseLatencies } from '../lib/stats.ts';

/** What the order-ladder client is asked to do. */
export interface OrderLadderSpec {
  /** API base URLs; user i posts to `apiUrls[i % n]`. */
  apiUrls: string[];
  /** Gateway URLs; user i's socket goes to `wsUrls[i % n]`. */
  wsUrls: string[];
  usersFile: string;
  users: number;
  /** Orders per second, one step each, in order. */
  rates: number[];
  warmupS: number;
  measureS: number;
  drainTimeoutMs: number;
  /** Stop after the first step whose end-to-end p99 is not under this. */
  stopPastP99Ms?: number;
  /** Keep-alive HTTP connections per API. */
  httpConnections: number;
  symbol: string;
  size: string;
}

/** One rate of the ladder, as the client measured it. */
export interface OrderStepFigures {
  rate: number;
  /** Orders sent in the measured window, and the rate they actually went out at. */
  orders: number;
  achievedRate: number;
  httpP50: number | null;
  httpP99: number | null;
  /** POST sent → its order event at the user's socket; a missing event counts as never. */
  e2eP50: number | null;
  e2eP99: number | null;
  e2eMax: number | null;
  /** HTTP answers other than 201, and request errors, by kind. */
  errors: Record<string, number>;
  /** Answered orders (201 or 422) whose event never reached the socket. */
  lost: number;
  /** Cumulative over the ladder (per socket, every event is checked). */
  duplicated: number;
  outOfOrder: number;
  wrongUser: number;
  socketsDropped: number;
}

/** A step with the runner's CPU readings over its measured window. */
export interface OrderStep extends OrderStepFigures {
  /** CPU of the API process(es) and of the database (PostgreSQL backends, or the embedded process). */
  apiCpuPct: number;
  apiCpuUsPerOrder: number;
  dbCpuPct: number | null;
  dbCpuUsPerOrder: number | null;
  /** CPU of the gateway process(es). */
  wsCpuPct: number;
  /**
   * Share of the window the API's main thread(s) spent runnable but waiting for a CPU: how much
   * other work on the machine, not the code, held the API back.
   */
  apiWaitPct: number;
}

interface SentOrder {
  at: number;
  answeredAt: number;
  status: number;
  orderId: number;
}

export function summariseOrderStep(
  rate: number,
  sendSeconds: number,
  sent: readonly SentOrder[],
  events: ReadonlyMap<number, { at: number }>,
  errors: Record<string, number>,
): OrderStepFigures {
  const http = new Float64Array(sent.length);
  let httpCount = 0;
  const e2e = new Float64Array(sent.length);
  let e2eCount = 0;
  let answered = 0;
  let lost = 0;
  for (const order of sent) {
    if (order.status === 201) http[httpCount++] = order.answeredAt - order.at;
    if (order.orderId === 0) continue;
    answered++;
    const event = events.get(order.orderId);
    if (event) e2e[e2eCount++] = event.at - order.at;
    else lost++;
  }
  const h = summariseLatencies(http, httpCount, httpCount);
  const e = summariseLatencies(e2e, e2eCount, answered);
  return {
    rate,
    orders: sent.length,
    achievedRate: round2(sent.length / sendSeconds),
    httpP50: msOrNull(h.p50),
    httpP99: msOrNull(h.p99),
    e2eP50: msOrNull(e.p50),
    e2eP99: msOrNull(e.p99),
    e2eMax: msOrNull(e.max),
    errors,
    lost,
    duplicated: 0,
    outOfOrder: 0,
    wrongUser: 0,
    socketsDropped: 0,
  };
}

/** The step is clean: every order answered 201 and its one event delivered in order. */
export function stepIsClean(step: OrderStepFigures): boolean {
  const errors = Object.values(step.errors).reduce((a, b) => a + b, 0);
  return (
    errors === 0 &&
    step.lost === 0 &&
    step.duplicated === 0 &&
    step.outOfOrder === 0 &&
    step.wrongUser === 0 &&
    step.socketsDropped === 0
  );
}

/** The knee: the highest rate whose end-to-end p99 stays under `limitMs` with a clean step. */
export function kneeOf(steps: readonly OrderStepFigures[], limitMs: number): number | null {
  let knee: number | null = null;
  for (const step of steps) {
    if (step.e2eP99 !== null && step.e2eP99 < limitMs && stepIsClean(step) && step.achievedRate >= 0.95 * step.rate)
      knee = Math.max(knee ?? 0, step.rate);
  }
  return knee;
}

/**
 * The knee of the repetitions together, read strictly: the rate below which, step by step from
 * the lowest, the median of the repetitions' end-to-end p99 stays under `limitMs` (a missing
 * step, an unclean one or one sent below 95 % of its rate counts as infinitely late). One
 * repetition's stall at a lower step does not end it, as it does the strictest reading of one
 * ladder, and a lucky higher step after a failed one does not raise it, as it does `kneeOf`.
 */
export function medianLadderKnee(ladders: readonly (readonly OrderStepFigures[])[], limitMs: number): number | null {
  const rates = [...new Set(ladders.flatMap((steps) => steps.map((s) => s.rate)))].sort((a, b) => a - b);
  let knee: number | null = null;
  for (const rate of rates) {
    const p99s = ladders.map((steps) => {
      const step = steps.find((s) => s.rate === rate);
      const usable = step && step.e2eP99 !== null && stepIsClean(step) && step.achievedRate >= 0.95 * rate;
      return usable ? step.e2eP99! : Number.POSITIVE_INFINITY;
    });
    if (!(median(p99s) < limitMs)) break;
    knee = rate;
  }
  return knee;
}

/**
 * The sustained rate: the highest rate at which every order was answered 201 and its event
 * delivered once, in order, with end-to-end p99 under `limitMs` (no backlog building up).
 * On a machine too busy for the knee's p99 it still says how many orders a second the
 * system keeps up with.
 */
export function sustainedOf(steps: readonly OrderStepFigures[], limitMs: number): number | null {
  return kneeOf(steps, limitMs);
}
