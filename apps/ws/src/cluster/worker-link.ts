import { Socket } from 'node:net';
import { AggregatorRegistry, Registry } from 'prom-client';
import type { AdmissionLedger, Reservation } from '../connection-ledger.ts';
import type { GatewayNode, NodeHealth } from './gateway-node.ts';
import {
  asPrimaryMessage,
  isConnectionMessage,
  type PrimaryMessage,
  type ReserveRequest,
  type WorkerMessage,
} from './node-messages.ts';

/** The IPC channel to the primary: `process` in a cluster worker, a fake in tests. */
export interface PrimaryChannel {
  readonly connected: boolean;
  /** `callback` gets a failed send's error (without one, Node emits it as an 'error' event that kills the worker). */
  send(message: WorkerMessage, callback: (err: Error | null) => void): unknown;
  on(event: 'message', listener: (message: unknown, handle?: unknown) => void): unknown;
}

/** Above prom-client's own 5 s wait for the workers' metrics. */
const METRICS_TIMEOUT_MS = 6000;

interface Pending<T = PrimaryMessage> {
  resolve(answer: T): void;
  reject(err: Error): void;
  timer: NodeJS.Timeout;
}

/**
 * A gateway worker's link to the node's primary (`NodeCoordinator`): reserves connection
 * slots there, and asks it for the node's health and aggregated metrics. Its `registry` is for
 * the worker's gateway metrics: prom-client's cluster aggregation collects it for the primary.
 *
 * A request the primary does not answer within `timeoutMs` fails (the upgrade is refused with
 * 503); a reservation granted after its request gave up is released at once, so no slot leaks.
 * Reservations and releases go in batches, one message of each per turn of the event loop.
 */
export function createWorkerLink(options: {
  workerId: number;
  channel?: PrimaryChannel;
  /** Default 2000 ms. */
  timeoutMs?: number;
}): GatewayNode & { readonly registry: Registry; ready(): void } {
  const channel: PrimaryChannel = options.channel ?? (process as unknown as PrimaryChannel);
  const timeoutMs = options.timeoutMs ?? 2000;
  // Constructing it installs prom-client's answer to the primary's metrics requests.
  new AggregatorRegistry();
  const registry = new Registry();
  AggregatorRegistry.setRegistries([registry]);

  const pending = new Map<number, Pending>();
  /** Reservations whose request gave up; their late grant is released. */
  const abandoned = new Map<number, string | null>();
  let nextId = 0;

  /** Reservations asked for in this turn of the event loop, sent together by `flush`. */
  let reserves: ReserveRequest[] = [];
  /** Slots given back in this turn, sent together by `flush`. */
  let releases: (string | null)[] = [];
  let flushing: NodeJS.Immediate | null = null;
  const waitingReservations = new Map<number, Pending<Reservation>>();

  function flush(): void {
    flushing = null;
    // Releases first: their sockets are already gone, so a reservation behind them may use the slot.
    if (releases.length > 0) send({ type: 'tradewire:release', keys: releases });
    releases = [];
    if (reserves.length === 0) return;
    const requests = reserves;
    reserves = [];
    if (!send({ type: 'tradewire:reserve', requests })) {
      const gone = new Error("the node's primary is gone");
      for (const { id } of requests) settleReservation(id)?.reject(gone);
    }
  }

  function scheduleFlush(): void {
    flushing ??= setImmediate(flush);
  }

  function settleReservation(id: number): Pending<Reservation> | undefined {
    const waiting = waitingReservations.get(id);
    if (!waiting) return undefined;
    waitingReservations.delete(id);
    clearTimeout(waiting.timer);
    return waiting;
  }

  let onConnection: ((socket: Socket) => void) | null = null;

  channel.on('message', (raw, handle) => {
    if (isConnectionMessage(raw)) {
      // A socket the primary accepted for this worker, unread.
      if (!(handle instanceof Socket)) return;
      if (onConnection) onConnection(handle);
      else handle.destroy();
      return;
    }
    const message = asPrimaryMessage(raw);
    if (message === null) return;
    if (message.type === 'tradewire:reserved') {
      for (const { id, reservation } of message.answers) {
        const waiting = settleReservation(id);
        if (waiting) waiting.resolve(reservation);
        else if (abandoned.has(id)) {
          const key = abandoned.get(id)!;
          abandoned.delete(id);
          if (reservation.ok) ledger.release(key);
        }
      }
      return;
    }
    const waiting = pending.get(message.id);
    if (waiting) {
      pending.delete(message.id);
      clearTimeout(waiting.timer);
      waiting.resolve(message);
      return;
    }
  });

  function send(message: WorkerMessage): boolean {
    if (!channel.connected) return false;
    try {
      channel.send(message, ignoreSendError);
      return true;
    } catch {
      return false; // the primary went away between the check and the send
    }
  }

  function ask(
    message: WorkerMessage & { id: number },
    waitMs = timeoutMs,
    onTimeout: () => void = () => {},
  ): Promise<PrimaryMessage> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        pending.delete(message.id);
        onTimeout();
        reject(new Error(`the node's primary did not answer ${message.type} within ${waitMs} ms`));
      }, waitMs);
      pending.set(message.id, { resolve, reject, timer });
      if (!send(message)) {
        pending.delete(message.id);
        clearTimeout(timer);
        reject(new Error("the node's primary is gone"));
      }
    });
  }

  const ledger: AdmissionLedger = {
    reserve(key): Promise<Reservation> {
      const id = (nextId += 1);
      return new Promise<Reservation>((resolve, reject) => {
        const timer = setTimeout(() => {
          waitingReservations.delete(id);
          abandoned.set(id, key);
          reject(new Error(`the node's primary did not answer tradewire:reserve within ${timeoutMs} ms`));
        }, timeoutMs);
        waitingReservations.set(id, { resolve, reject, timer });
        reserves.push({ id, key });
        scheduleFlush();
      });
    },
    release(key) {
      releases.push(key);
      scheduleFlush();
    },
  };

  return {
    workerId: options.workerId,
    registry,
    ledger,
    async health(): Promise<NodeHealth> {
      const answer = await ask({ type: 'tradewire:health', id: (nextId += 1) });
      if (answer.type !== 'tradewire:health') throw new Error(`unexpected answer ${answer.type}`);
      return answer.health;
    },
    async metrics(): Promise<string> {
      // The primary asks every worker; prom-client gives a worker that does not answer 5 s.
      const answer = await ask({ type: 'tradewire:metrics', id: (nextId += 1) }, METRICS_TIMEOUT_MS);
      if (answer.type === 'tradewire:failed') throw new Error(answer.error);
      if (answer.type !== 'tradewire:metrics') throw new Error(`unexpected answer ${answer.type}`);
      return answer.text;
    },
    accept(listener) {
      onConnection = listener;
    },
    /** Tells the primary this worker serves: it may hand it connections. */
    ready() {
      send({ type: 'tradewire:ready' });
    },
  };
}

/**
 * A send that fails after it was queued (EPIPE: the primary exited while this worker drains its
 * sockets at shutdown) loses only that message: a release the primary can no longer count, or
 * a request whose timeout answers it.
 */
function ignoreSendError(): void {}
