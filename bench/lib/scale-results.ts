import type { ThroughputResult } from '../load/scenarios.ts';
import type { RunRecord } from './results.ts';

/** CPU of one process of the gateway node over the measured window. */
export interface ProcessCpu {
  pid: number;
  role: 'primary' | 'worker';
  cpuPct: number;
}

/** Fan-out throughput of one gateway node started by the launcher with `WS_WORKERS=workers`. */
export interface WorkersRun {
  workers: number;
  throughput: ThroughputResult;
  /** Server CPU of every process of the node (primary and workers) per delivery, µs. */
  nodeCpuUsPerDelivery: number;
  /** The same, counting the workers only (the primary forwards no message). */
  workerCpuUsPerDelivery: number;
  processes: ProcessCpu[];
}

/** One gateway of the partitioned routing measurement. */
export interface GatewayShare {
  gateway: number;
  users: number;
  /** Private messages the gateway received from Redis (its metrics). */
  received: number;
  /** Private events it delivered to its sockets (counted by the clients). */
  delivered: number;
  /** The gateway's CPU from the clients being connected to the last event drained, ms. */
  cpuMs: number;
}

export interface PartitionShareRun {
  placement: 'partition' | 'random';
  users: number;
  partitions: number;
  published: number;
  gateways: GatewayShare[];
  lost: number;
  wrongUser: number;
}

export interface ScaleResults {
  workers: RunRecord<WorkersRun>[];
  partitions: RunRecord<PartitionShareRun>[];
  /** Why the WS_WORKERS part was not measured, if it was not. */
  workersSkipped?: string;
}
