import type { OrderHistoryPage } from '@repo/db';
import { EVENT_KINDS, type OrderFilledEvent, type OrderRejectedEvent } from '@repo/events';

export type { OrderHistoryPage };

/** An order event as the history hands it over; checked again by the gateway before it is sent. */
export type HistoryEvent = OrderHistoryPage['events'][number];

/**
 * Where the gateway reads the order events a socket missed: in the launcher the database
 * outbox (`db.outbox.orderHistory`, shared by every gateway, untouched by a Redis restart). The
 * page is the database's own type, so the paging rules (events after `afterSeq` in `seq`
 * order, at most `limit`, past the first at most about `maxBytes` of JSON, `latestSeq` and
 * `oldestSeq` from the same snapshot) have one definition; one contract suite
 * (apps/ws/test/order-history.contract.ts) holds every implementation to them.
 */
export interface OrderHistory {
  read(userId: number, afterSeq: number, limit: number, maxBytes: number): Promise<OrderHistoryPage>;
}

/** Decodes a history event defensively: the payload must pass its schema and belong to the user. */
export function decodeHistoryEvent(
  event: HistoryEvent,
  userId: number,
): { kind: HistoryEvent['kind']; event: OrderFilledEvent | OrderRejectedEvent } | null {
  const schema = EVENT_KINDS[event.kind]?.schema;
  const parsed = schema?.safeParse(event.payload);
  if (!parsed?.success) return null;
  const decoded = parsed.data;
  if (decoded.userId !== userId || decoded.seq !== event.seq) return null;
  return { kind: event.kind, event: decoded };
}
