import cluster, { type Worker } from 'node:cluster';
import type { Socket } from 'node:net';
import type { Logger } from '@repo/log';
import { backoffDelay } from '@repo/retry';
import { CONNECTION_MESSAGE, ConnectionDispatcher, NodeCoordinator } from '@repo/ws';
import type { Config } from './config.ts';

/**
 * A worker that served at least this long before it exited is restarted at once (its backoff
 * starts over); one that keeps dying sooner, or before it serves at all, waits longer each time.
 */
const STABLE_AFTER_MS = 30_000;
const RESTART_BACKOFF = { baseDelayMs: 200, maxDelayMs: 30_000 };

export interface GatewayWorkers {
  /** The node's port (`WS_PORT`, or the one chosen for 0): the primary accepts there. */
  readonly port: number;
  /** SIGTERM to every worker (each drains its sockets), then waits for every exit. */
  stop(): Promise<void>;
}

/** One worker position of the node: the process in it now, and how often it has died young. */
interface Slot {
  worker: Worker | null;
  /** When the worker in it sent `tradewire:ready`; null while it starts. */
  servedAt: number | null;
  quickDeaths: number;
  restart: NodeJS.Timeout | null;
}

/**
 * The primary of a gateway node of `WS_WORKERS` processes (node:cluster): forks the workers,
 * listens on `WS_PORT` once every one serves and hands each accepted connection to one of
 * them (`ConnectionDispatcher`: not node:cluster's round-robin, whose queue has no bound),
 * holds their shared connection limits, health and metrics (`NodeCoordinator`), and restarts a
 * worker that exits unexpectedly, with a full-jitter backoff while it keeps dying. Resolves once
 * every worker serves; rejects, stopping the others, if one exits before.
 */
export async function startGatewayWorkers(config: Config, logger: Logger): Promise<GatewayWorkers> {
  const log = logger.child({ part: 'ws-primary' });
  const slots: Slot[] = [];
  /** The workers of the node's first start, until each serves: one that fails fails the start. */
  const starting = new Map<number, { resolve(): void; reject(err: Error): void }>();
  let stopping = false;

  const coordinator = new NodeCoordinator({
    configured: config.wsWorkers,
    limits: config.wsLimits,
    logger: log,
    onReady(workerId) {
      const worker = cluster.workers?.[workerId];
      if (worker) dispatcher.add({ id: workerId, send: (socket, done) => handOver(worker, socket, done) });
      const slot = slots.find((s) => s.worker?.id === workerId);
      if (slot) slot.servedAt = Date.now();
      const waiting = starting.get(workerId);
      starting.delete(workerId);
      if (waiting) waiting.resolve();
      else log.info({ worker: workerId }, 'gateway worker restarted');
    },
  });
  const dispatcher = new ConnectionDispatcher({ onShed: (reason) => coordinator.shed(reason) });

  const onMessage = (worker: Worker, message: unknown) => {
    coordinator.handle(worker.id, message, (reply) => {
      // A worker that died with a request in flight gets no answer.
      if (worker.isConnected()) worker.send(reply, undefined, () => {});
    });
  };
  cluster.on('message', onMessage);

  function fork(slot: Slot): Worker {
    const worker = cluster.fork();
    slot.worker = worker;
    slot.servedAt = null;
    worker.on('error', (err) => log.warn({ worker: worker.id, err: err.message }, 'gateway worker IPC error'));
    worker.once('exit', (code, signal) => onExit(slot, worker, code, signal));
    return worker;
  }

  /** A worker of the node's first start: resolves once it serves, rejects if it exits before. */
  function firstStart(slot: Slot): Promise<void> {
    const worker = fork(slot);
    return new Promise<void>((resolve, reject) => starting.set(worker.id, { resolve, reject }));
  }

  function onExit(slot: Slot, worker: Worker, code: number | null, signal: string | null): void {
    coordinator.workerGone(worker.id);
    dispatcher.remove(worker.id);
    const waiting = starting.get(worker.id);
    starting.delete(worker.id);
    if (slot.worker === worker) slot.worker = null;
    if (waiting) {
      // The node's first start fails (the launcher exits 1) rather than serve a worker short.
      waiting.reject(new Error(`gateway worker ${worker.id} exited (${signal ?? code}) before it served`));
      return;
    }
    if (stopping) return;
    // Past the first start a worker is replaced however it ends, even before it served (its
    // start failed: Redis out of reach, say), each quick death waiting longer.
    const servedAt = slot.servedAt;
    slot.quickDeaths = servedAt !== null && Date.now() - servedAt >= STABLE_AFTER_MS ? 0 : slot.quickDeaths + 1;
    const delayMs = backoffDelay(slot.quickDeaths - 1, RESTART_BACKOFF);
    log.warn(
      {
        worker: worker.id,
        pid: worker.process.pid,
        code,
        signal,
        served: servedAt !== null,
        quickDeaths: slot.quickDeaths,
        restartInMs: delayMs,
      },
      servedAt === null
        ? 'gateway worker exited before it served (its start failed); starting another'
        : 'gateway worker exited; starting another',
    );
    coordinator.restarting();
    slot.restart = setTimeout(() => {
      slot.restart = null;
      if (!stopping) fork(slot);
    }, delayMs);
  }

  async function stop(): Promise<void> {
    stopping = true;
    // No new connection first; each worker then drains the sockets it has.
    dispatcher.close();
    const exits: Promise<unknown>[] = [];
    for (const slot of slots) {
      if (slot.restart) clearTimeout(slot.restart);
      const worker = slot.worker;
      if (!worker || worker.isDead()) continue;
      exits.push(new Promise((resolve) => worker.once('exit', resolve)));
      // Each worker drains its own sockets (close 1001, unsubscribe) within its own deadline.
      worker.process.kill('SIGTERM');
    }
    await Promise.all(exits);
    cluster.off('message', onMessage);
  }

  for (let i = 0; i < config.wsWorkers; i++) {
    slots.push({ worker: null, servedAt: null, quickDeaths: 0, restart: null });
  }
  try {
    await Promise.all(slots.map((slot) => firstStart(slot)));
    return { port: await dispatcher.listen(config.wsPort, config.host), stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** Sends an accepted socket to `worker`; `done` once it has left the primary, or with why not. */
function handOver(worker: Worker, socket: Socket, done: (err: Error | null) => void): void {
  if (!worker.isConnected()) {
    done(new Error('worker gone'));
    return;
  }
  try {
    worker.send(CONNECTION_MESSAGE, socket, done);
  } catch (err) {
    done(err as Error);
  }
}
