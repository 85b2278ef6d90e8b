import { AggregatorRegistry, Counter, Gauge, Registry } from 'prom-client';
import type { Logger } from '@repo/log';
import { ConnectionLedger } from '../connection-ledger.ts';
import { resolveLimits, type GatewayLimits } from '../limits.ts';
import { ThrottledWarning } from '../throttled-warning.ts';
import type { ShedReason } from './connection-dispatcher.ts';
import type { NodeHealth } from './gateway-node.ts';
import { asWorkerMessage, type PrimaryMessage } from './node-messages.ts';

/**
 * The primary's side of a gateway node of several workers (`WS_WORKERS`): it holds the node's
 * one connection ledger, so the per-address limits, the upgrade rate and the connection cap
 * count every worker's sockets together, and it answers the workers' `/health` and
 * `/metrics` for the whole node (prom-client's cluster aggregation).
 *
 * Each reservation is remembered under the worker that holds it: when a worker dies, its
 * sockets are gone with it, and so are its slots. A worker sends its reservations and its
 * releases in batches, one message each per turn of its event loop: the primary also accepts
 * every connection and hands it to a worker, and in a reconnect storm a message per upgrade and
 * per close each way would take its loop from that.
 */
export class NodeCoordinator {
  readonly #ledger: ConnectionLedger;
  readonly #configured: number;
  readonly #logger: Logger;
  /** Slots per worker and key, to give back what a dead worker held. */
  readonly #held = new Map<number, Map<string | null, number>>();
  readonly #up = new Set<number>();
  /**
   * Workers that exited. node:cluster can deliver a message still in a dead worker's IPC pipe
   * after its `exit` (it drops the worker only on 'disconnect'): a reservation would then hold
   * slots no one frees, a `ready` count a dead worker up. Ids are never reused; one number per
   * exit is kept for the life of the primary.
   */
  readonly #gone = new Set<number>();
  readonly #onReady: (workerId: number) => void;
  readonly #aggregate: () => Promise<string>;
  readonly #registry = new Registry();
  readonly #restarts: Counter;
  readonly #shed: Counter<'reason'>;
  readonly #shedWarning: ThrottledWarning;

  constructor(options: {
    /** `WS_WORKERS`. */
    configured: number;
    /** The gateway limits the workers run with; the node-wide ones are counted here. */
    limits?: Partial<GatewayLimits>;
    logger: Logger;
    /** A worker finished starting: it takes connections from now on. */
    onReady?: (workerId: number) => void;
    /** Every worker's metrics, aggregated; default prom-client's `AggregatorRegistry`. */
    aggregateMetrics?: () => Promise<string>;
  }) {
    const limits = resolveLimits(options.limits);
    this.#ledger = new ConnectionLedger({
      upgradesPerAddress: limits.upgradesPerAddress,
      upgradeWindowMs: limits.upgradeWindowMs,
      maxConnectionsPerAddress: limits.maxConnectionsPerAddress,
      maxConnections: limits.maxConnections,
    });
    this.#configured = options.configured;
    this.#logger = options.logger;
    this.#shedWarning = new ThrottledWarning(options.logger);
    this.#onReady = options.onReady ?? (() => {});
    if (options.aggregateMetrics) this.#aggregate = options.aggregateMetrics;
    else {
      const aggregator = new AggregatorRegistry();
      this.#aggregate = () => aggregator.clusterMetrics();
    }
    const up = this.#up;
    const configured = this.#configured;
    new Gauge({
      name: 'tradewire_ws_workers_up',
      help: 'Gateway worker processes of this node serving now',
      registers: [this.#registry],
      collect() {
        this.set(up.size);
      },
    });
    new Gauge({
      name: 'tradewire_ws_workers_configured',
      help: 'Gateway worker processes this node runs when every one is up (WS_WORKERS)',
      registers: [this.#registry],
      collect() {
        this.set(configured);
      },
    });
    this.#restarts = new Counter({
      name: 'tradewire_ws_worker_restarts_total',
      help: 'Gateway workers started again after one exited unexpectedly',
      registers: [this.#registry],
    });
    this.#shed = new Counter({
      name: 'tradewire_ws_connections_shed_total',
      help: 'Connections the node closed unread before any worker took them, per reason',
      labelNames: ['reason'],
      registers: [this.#registry],
    });
  }

  /**
   * A message from worker `workerId` (others' messages, prom-client's, are ignored, and so is
   * any message from a worker that already exited); `reply` answers it.
   */
  handle(workerId: number, raw: unknown, reply: (message: PrimaryMessage) => void): void {
    if (this.#gone.has(workerId)) return;
    const message = asWorkerMessage(raw);
    if (message === null) return;
    switch (message.type) {
      case 'tradewire:ready':
        this.#up.add(workerId);
        this.#onReady(workerId);
        return;
      case 'tradewire:reserve': {
        const answers = message.requests.map(({ id, key }) => {
          const reservation = this.#ledger.reserve(key);
          if (reservation.ok) this.#hold(workerId, key, 1);
          return { id, reservation };
        });
        reply({ type: 'tradewire:reserved', answers });
        return;
      }
      case 'tradewire:release':
        for (const key of message.keys) if (this.#hold(workerId, key, -1)) this.#ledger.release(key);
        return;
      case 'tradewire:health':
        reply({ type: 'tradewire:health', id: message.id, health: this.health() });
        return;
      case 'tradewire:metrics':
        this.metrics().then(
          (text) => reply({ type: 'tradewire:metrics', id: message.id, text }),
          (err: unknown) => {
            this.#logger.error({ err }, 'metrics aggregation failed');
            reply({ type: 'tradewire:failed', id: message.id, error: 'metrics aggregation failed' });
          },
        );
        return;
    }
  }

  /**
   * Worker `workerId` exited: it serves no more, the slots its sockets held are free, and
   * whatever it sent that is still on its way is ignored.
   */
  workerGone(workerId: number): void {
    this.#gone.add(workerId);
    this.#up.delete(workerId);
    const held = this.#held.get(workerId);
    this.#held.delete(workerId);
    if (!held) return;
    let freed = 0;
    for (const [key, count] of held) {
      for (let i = 0; i < count; i++) this.#ledger.release(key);
      freed += count;
    }
    if (freed > 0) this.#logger.info({ worker: workerId, freed }, 'connection slots of an exited worker freed');
  }

  /** A worker is being started again after an unexpected exit. */
  restarting(): void {
    this.#restarts.inc();
  }

  /** The node's front door closed an accepted connection unread (see `ConnectionDispatcher`). */
  shed(reason: ShedReason): void {
    this.#shed.inc({ reason });
    this.#shedWarning.warn({ reason }, 'closed an accepted connection no worker could take in time');
  }

  health(): NodeHealth {
    return { connections: this.#ledger.total, workers: { up: this.#up.size, configured: this.#configured } };
  }

  /** Every worker's metrics summed (the broker gauge: the lowest), then the node's own. */
  async metrics(): Promise<string> {
    const [workers, node] = await Promise.all([this.#aggregate(), this.#registry.metrics()]);
    return `${workers.trimEnd()}\n\n${node}`;
  }

  /** Adds `delta` to what `workerId` holds under `key`; false when there was nothing to release. */
  #hold(workerId: number, key: string | null, delta: 1 | -1): boolean {
    let held = this.#held.get(workerId);
    if (!held) {
      if (delta < 0) return false;
      held = new Map();
      this.#held.set(workerId, held);
    }
    const count = (held.get(key) ?? 0) + delta;
    if (count < 0) return false;
    if (count === 0) held.delete(key);
    else held.set(key, count);
    return true;
  }
}
