import type { SubscribedMessage } from '@repo/protocol';

/** What the client has seen for one user. */
interface UserPositions {
  /** Highest `seq` of an `order_filled` / `order_rejected` delivered (or skipped past). */
  orderSeq?: number;
  /** Highest portfolio `version` delivered. */
  portfolioVersion?: number;
}

/** How a portfolio message compares with the last one delivered. */
type PortfolioFreshness = 'new' | 'same' | 'stale';

const isPosition = (value: unknown): value is number =>
  typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;

/**
 * Delivery positions (docs/delivery.md): the last order `seq` and portfolio `version` seen, per user,
 * so the client can resubscribe with `since` after a reconnect and drop what it has already
 * delivered (the relay may publish twice; a replay may overlap live delivery).
 *
 * Keyed by user because a client can log out and authenticate as someone else: one user's
 * position means nothing for another's stream. A server that sends no `seq` / `version`
 * leaves the positions empty, and then nothing is ever dropped.
 */
export class DeliveryPositions {
  private readonly byUser = new Map<number, UserPositions>();

  private user(userId: number): UserPositions {
    let positions = this.byUser.get(userId);
    if (!positions) {
      positions = {};
      this.byUser.set(userId, positions);
    }
    return positions;
  }

  /** The `since` to resubscribe `orders` with, when one is known. */
  orderSeq(userId: number | undefined): number | undefined {
    return userId === undefined ? undefined : this.byUser.get(userId)?.orderSeq;
  }

  /**
   * Whether an order event is new. Records its `seq` when it is. An event without a usable
   * `seq` is always new (a server without delivery positions).
   */
  acceptOrderEvent(userId: number, seq: unknown): boolean {
    if (!isPosition(seq)) return true;
    const positions = this.user(userId);
    if (positions.orderSeq !== undefined && seq <= positions.orderSeq) return false;
    positions.orderSeq = seq;
    return true;
  }

  /** Classifies a portfolio message by `version`, recording it when it is new. */
  acceptPortfolio(userId: number, version: unknown): PortfolioFreshness {
    if (!isPosition(version)) return 'new';
    const positions = this.user(userId);
    const last = positions.portfolioVersion;
    if (last === undefined || version > last) {
      positions.portfolioVersion = version;
      return 'new';
    }
    return version === last ? 'same' : 'stale';
  }

  /**
   * Applies the `subscribed` reply of an `orders` subscription sent with `since` (or without).
   * - `recovered:false`: history no longer reaches our position; the app reloads over REST,
   *   which brings it up to the server's latest `seq`, so that becomes our position.
   * - a fresh subscribe (no `since`): the app starts from the server's latest `seq`; live
   *   events follow it. Never moves backwards (a reply can race a live event on the socket).
   * - `since` and recovered: the replay that follows the reply moves the position itself;
   *   jumping to the latest here would drop the very events being replayed.
   */
  onOrdersSubscribed(userId: number | undefined, reply: SubscribedMessage, sentSince: number | undefined): void {
    if (userId === undefined) return;
    const positions = this.user(userId);
    if (reply.recovered === false) {
      if (isPosition(reply.seq)) positions.orderSeq = reply.seq;
      else delete positions.orderSeq;
      return;
    }
    if (sentSince === undefined && isPosition(reply.seq)) {
      positions.orderSeq = Math.max(positions.orderSeq ?? 0, reply.seq);
    }
  }
}
