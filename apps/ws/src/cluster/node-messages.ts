import type { Reservation } from '../connection-ledger.ts';
import type { NodeHealth } from './gateway-node.ts';

/**
 * The IPC messages between a gateway worker and the node's primary. Every type starts with
 * `tradewire:`, so they never collide with prom-client's own cluster messages on the same channel.
 */
export type WorkerMessage =
  | { type: 'tradewire:ready'; port: number }
  | { type: 'tradewire:reserve'; id: number; key: string | null }
  | { type: 'tradewire:release'; key: string | null }
  | { type: 'tradewire:health'; id: number }
  | { type: 'tradewire:metrics'; id: number };

export type PrimaryMessage =
  | { type: 'tradewire:reserved'; id: number; reservation: Reservation }
  | { type: 'tradewire:health'; id: number; health: NodeHealth }
  | { type: 'tradewire:metrics'; id: number; text: string }
  | { type: 'tradewire:failed'; id: number; error: string };

const isKey = (value: unknown): value is string | null => value === null || typeof value === 'string';
const isId = (value: unknown): value is number => typeof value === 'number' && Number.isSafeInteger(value);

/** The message as a `WorkerMessage`, or null when it is something else (prom-client's, or malformed). */
export function asWorkerMessage(message: unknown): WorkerMessage | null {
  if (typeof message !== 'object' || message === null) return null;
  const m = message as Record<string, unknown>;
  switch (m.type) {
    case 'tradewire:ready':
      return isId(m.port) ? { type: m.type, port: m.port } : null;
    case 'tradewire:reserve':
      return isId(m.id) && isKey(m.key) ? { type: m.type, id: m.id, key: m.key } : null;
    case 'tradewire:release':
      return isKey(m.key) ? { type: m.type, key: m.key } : null;
    case 'tradewire:health':
    case 'tradewire:metrics':
      return isId(m.id) ? { type: m.type, id: m.id } : null;
    default:
      return null;
  }
}

/** The message as a `PrimaryMessage` (its payload is the primary's own), or null. */
export function asPrimaryMessage(message: unknown): PrimaryMessage | null {
  if (typeof message !== 'object' || message === null) return null;
  const m = message as Record<string, unknown>;
  if (typeof m.type !== 'string' || !m.type.startsWith('tradewire:') || !isId(m.id)) return null;
  return message as PrimaryMessage;
}
