import type { Socket } from 'node:net';
import type { AdmissionLedger } from '../connection-ledger.ts';

/** What the node's primary knows of the whole node. */
export interface NodeHealth {
  /** Connection slots held on the node: every worker's open sockets and handshakes. */
  connections: number;
  /** Workers serving now, and how many the node runs when every one is up (`WS_WORKERS`). */
  workers: { up: number; configured: number };
}

/**
 * A gateway's view of the node it is one worker of: the node-wide connection ledger, and the
 * node's health and metrics, all held by the primary (see `NodeCoordinator`).
 */
export interface GatewayNode {
  /** This worker's cluster id (a restarted worker gets a new one). */
  readonly workerId: number;
  readonly ledger: AdmissionLedger;
  health(): Promise<NodeHealth>;
  /** Every worker's metrics, aggregated, in the Prometheus text format. */
  metrics(): Promise<string>;
  /**
   * Serves the node's connections: the primary accepts on the node's port and hands each
   * socket, unread, to `listener` (see `ConnectionDispatcher`). A worker listens on no port.
   */
  accept(listener: (socket: Socket) => void): void;
}
