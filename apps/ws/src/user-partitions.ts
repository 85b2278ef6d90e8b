import {
  PRIVATE_EVENT_KINDS,
  type Broker,
  type ChannelLayout,
  type PrivateEventKind,
  type Unsubscribe,
} from '@repo/broker';

/** The handler of each private event kind, whatever partition the event arrives on. */
export type PrivateRoutes = Readonly<Record<PrivateEventKind, (raw: string) => void>>;

interface Partition {
  /** Authenticated sockets of users in this partition. */
  holders: number;
  /** Set while the partition's channels are subscribed. */
  unsubscribes: Unsubscribe[] | null;
  /** The last subscription change queued: changes of one partition run one at a time. */
  queue: Promise<void>;
  /** When its channels were last subscribed, on the gateway's count of subscriptions. */
  subscribedAt: number;
}

/**
 * The broker subscriptions of the private channels, by user partition. In the partitioned
 * layout (Redis Cluster) a gateway subscribes to a partition's channels while at least one of
 * its authenticated sockets belongs to a user of that partition, and drops them when the last
 * one leaves, so it receives only the private events of partitions it holds users of. In the
 * design layout there is one partition for everyone: its channels are subscribed at start and
 * kept, and holding costs nothing.
 */
export class UserPartitions {
  readonly #broker: Broker;
  readonly #layout: ChannelLayout;
  readonly #routes: PrivateRoutes;
  readonly #partitions = new Map<number, Partition>();
  /** Design layout: partition 0 is held for the whole life of the gateway. */
  readonly #fixed: boolean;
  /** Partition subscriptions made so far: `mark()`'s clock. */
  #subscriptions = 0;
  #closed = false;

  private constructor(broker: Broker, layout: ChannelLayout, routes: PrivateRoutes) {
    this.#broker = broker;
    this.#layout = layout;
    this.#routes = routes;
    this.#fixed = layout.kind === 'design';
  }

  /** Subscribes the design layout's channels at once (rejecting when it cannot); nothing in the partitioned one. */
  static async start(broker: Broker, layout: ChannelLayout, routes: PrivateRoutes): Promise<UserPartitions> {
    const partitions = new UserPartitions(broker, layout, routes);
    if (partitions.#fixed) await partitions.#hold(0, partitions.mark());
    return partitions;
  }

  /** A point in time for `hold(userId, since)`: take it before the token is checked. */
  mark(): number {
    return this.#subscriptions;
  }

  /**
   * Holds the partition of `userId` for one authenticated socket and resolves once its channels
   * are subscribed. Resolves `true` when they became subscribed after `since` (a `mark()`; by
   * default this call, so: when this hold subscribed them): events of the user
   * published meanwhile may never have reached this gateway (a revocation among them; another
   * user of the partition may have brought the subscription while this one's token was being
   * checked), so the caller checks what it relies on again. Rejects (holding nothing) when the
   * broker cannot subscribe.
   */
  async hold(userId: number, since = this.mark()): Promise<boolean> {
    if (this.#fixed) return false;
    return this.#hold(this.#layout.partitionOf(userId), since);
  }

  /** Lets go of one `hold` of `userId`'s partition; the last one unsubscribes its channels. */
  release(userId: number): void {
    if (this.#fixed || this.#closed) return;
    const index = this.#layout.partitionOf(userId);
    const partition = this.#partitions.get(index);
    if (!partition || partition.holders === 0) return;
    partition.holders -= 1;
    // A hold that comes back before this runs turns it into a subscribe, whose failure that
    // hold reports: nothing to report here.
    if (partition.holders === 0) void this.#enqueue(index, partition).catch(() => {});
  }

  /** The partitions whose channels are subscribed now, in order. */
  subscribed(): number[] {
    return [...this.#partitions.entries()]
      .filter(([, p]) => p.unsubscribes !== null)
      .map(([index]) => index)
      .sort((a, b) => a - b);
  }

  /** Resolves once every queued subscription change has run. */
  async settled(): Promise<void> {
    await Promise.allSettled([...this.#partitions.values()].map((partition) => partition.queue));
  }

  /** Unsubscribes everything. The broker stays open: its owner closes it. */
  async close(): Promise<void> {
    this.#closed = true;
    await Promise.allSettled(
      [...this.#partitions.values()].map(async (partition) => {
        await partition.queue;
        const unsubscribes = partition.unsubscribes ?? [];
        partition.unsubscribes = null;
        await Promise.allSettled(unsubscribes.map((unsubscribe) => unsubscribe()));
      }),
    );
    this.#partitions.clear();
  }

  async #hold(index: number, since: number): Promise<boolean> {
    let partition = this.#partitions.get(index);
    if (!partition) {
      partition = { holders: 0, unsubscribes: null, queue: Promise.resolve(), subscribedAt: 0 };
      this.#partitions.set(index, partition);
    }
    partition.holders += 1;
    try {
      await this.#enqueue(index, partition);
    } catch (err) {
      partition.holders -= 1;
      if (partition.holders === 0) void this.#enqueue(index, partition).catch(() => {});
      throw err;
    }
    // A subscription this hold made, or one made since the mark, is newer than `since`.
    return partition.subscribedAt > since;
  }

  /** Queues a change that makes the partition subscribed exactly when it has holders. */
  #enqueue(index: number, partition: Partition): Promise<void> {
    const change = partition.queue
      .catch(() => {})
      .then(() => (partition.holders > 0 ? this.#subscribe(index, partition) : this.#unsubscribe(index, partition)));
    partition.queue = change;
    return change;
  }

  async #subscribe(index: number, partition: Partition): Promise<void> {
    if (partition.unsubscribes !== null || this.#closed) return;
    const made: Unsubscribe[] = [];
    try {
      for (const kind of PRIVATE_EVENT_KINDS) {
        made.push(await this.#broker.subscribe(this.#layout.privateChannel(kind, index), this.#routes[kind]));
      }
    } catch (err) {
      await Promise.allSettled(made.map((unsubscribe) => unsubscribe()));
      throw err;
    }
    partition.unsubscribes = made;
    partition.subscribedAt = this.#subscriptions += 1;
  }

  async #unsubscribe(index: number, partition: Partition): Promise<void> {
    const unsubscribes = partition.unsubscribes;
    partition.unsubscribes = null;
    if (unsubscribes) await Promise.allSettled(unsubscribes.map((unsubscribe) => unsubscribe()));
    if (partition.holders === 0 && this.#partitions.get(index) === partition) this.#partitions.delete(index);
  }
}
