import type { Reservation } from '../connection-ledger.ts';
import type { NodeHealth } from './gateway-node.ts';

/**
 * The IPC messages between a gateway worker and the node's primary. Every type starts with
 * `tradewire:`, so they never collide with prom-client's own cluster messages on the same channel.
 */
export type WorkerMessage =
  | { type: 'tradewire:ready' }
  /** Every reservation a worker asked for in one turn of its event loop, in order. */
  | { type: 'tradewire:reserve'; requests: ReserveRequest[] }
  /** Every slot a worker gave back in one turn of its event loop. */
  | { type: 'tradewire:release'; keys: (string | null)[] }
  | { type: 'tradewire:health'; id: number }
  | { type: 'tradewire:metrics'; id: number };

export interface ReserveRequest {
  id: number;
  key: string | null;
}

export type PrimaryMessage =
  /** The answers to one `tradewire:reserve`, in its order. */
  | { type: 'tradewire:reserved'; answers: { id: number; reservation: Reservation }[] }
  | { type: 'tradewire:health'; id: number; health: NodeHealth }
  | { type: 'tradewire:metrics'; id: number; text: string }
  | { type: 'tradewire:failed'; id: number; error: string };

/** Sent by the primary with an accepted socket as the message's handle: the worker serves it. */
export const CONNECTION_MESSAGE = { type: 'tradewire:connection' } as const;

export function isConnectionMessage(message: unknown): boolean {
  if (typeof message !== 'object' || message === null) return false;
  return (message as { type?: unknown }).type === CONNECTION_MESSAGE.type;
}

const isKey = (value: unknown): value is string | null => value === null || typeof value === 'string';
const isId = (value: unknown): value is number => typeof value === 'number' && Number.isSafeInteger(value);
const isRequest = (value: unknown): value is ReserveRequest =>
  typeof value === 'object' &&
  value !== null &&
  isId((value as Record<string, unknown>).id) &&
  isKey((value as Record<string, unknown>).key);

/** The message as a `WorkerMessage`, or null when it is something else (prom-client's, or malformed). */
export function asWorkerMessage(message: unknown): WorkerMessage | null {
  if (typeof message !== 'object' || message === null) return null;
  const m = message as Record<string, unknown>;
  switch (m.type) {
    case 'tradewire:ready':
      return { type: m.type };
    case 'tradewire:reserve':
      return Array.isArray(m.requests) && m.requests.every(isRequest)
        ? { type: m.type, requests: m.requests.map((r: ReserveRequest) => ({ id: r.id, key: r.key })) }
        : null;
    case 'tradewire:release':
      return Array.isArray(m.keys) && m.keys.every(isKey) ? { type: m.type, keys: m.keys } : null;
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
  if (typeof m.type !== 'string' || !m.type.startsWith('tradewire:')) return null;
  if (m.type === 'tradewire:reserved') return Array.isArray(m.answers) ? (message as PrimaryMessage) : null;
  return isId(m.id) ? (message as PrimaryMessage) : null;
}
