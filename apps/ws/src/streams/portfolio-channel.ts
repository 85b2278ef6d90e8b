import { decodeEvent, EVENT_KINDS, type PortfolioUpdateEvent } from '@repo/events';
import { withTimeout } from '@repo/retry';
import { EVENT_CHANNELS } from '../broker-contract.ts';
import { PortfolioStream, portfolioUpdate } from './portfolio-stream.ts';
import { SubscriberIndex } from './subscriber-index.ts';
import {
  decodeOrDrop,
  dropMalformed,
  type BrokerRoute,
  type ChannelDeps,
  type ChannelKind,
  type StreamOwner,
  type StreamSink,
} from './stream.ts';

/** Users whose latest portfolio is read at once after a broker outage. */
const RESUME_READS = 16;

/**
 * `portfolio`, for its user only: the latest portfolio on subscribe, then every newer one. A
 * portfolio's `version` never goes backwards on a socket.
 */
export class PortfolioChannel implements ChannelKind {
  readonly channel = 'portfolio';
  readonly needsAuth = true;
  readonly routes: readonly BrokerRoute[];
  readonly deps: ChannelDeps;
  readonly #members = new SubscriberIndex<number, PortfolioStream>();
  readonly #readStored: (userId: number) => Promise<string | null>;
  readonly #load: ((userId: number) => Promise<PortfolioUpdateEvent | null>) | undefined;

  constructor(
    deps: ChannelDeps & {
      /** The raw latest portfolio of a user (the broker's latest-value store). */
      readStored: (userId: number) => Promise<string | null>;
      /** Fallback when the store has none (the database). */
      loadPortfolio?: ((userId: number) => Promise<PortfolioUpdateEvent | null>) | undefined;
    },
  ) {
    this.deps = deps;
    this.#readStored = deps.readStored;
    this.#load = deps.loadPortfolio;
    this.routes = [{ kind: 'portfolio', handler: this.#onUpdate }];
  }

  subscribe(sink: StreamSink, owner: StreamOwner, userId: number | null): PortfolioStream {
    if (userId === null) throw new Error('a portfolio stream needs a user');
    const stream = new PortfolioStream(sink, owner, this, userId);
    this.#members.add(userId, stream);
    this.deps.metrics.subscribed('portfolio');
    return stream;
  }

  /** Called by a closing stream. */
  leave(stream: PortfolioStream): void {
    if (this.#members.remove(stream.userId, stream)) this.deps.metrics.unsubscribed('portfolio');
  }

  /**
   * After a broker outage (a Redis restart, a Redis Cluster failover) a portfolio may have been
   * published while this gateway was not subscribed, and no later one may follow soon: each
   * user's latest is read once (a few users at a time) and offered to the user's streams, which
   * write it only when its `version` is newer than theirs. Without a version nothing can tell,
   * so nothing is sent. Resolves when every user's is done; never rejects.
   */
  async resumed(): Promise<void> {
    const userIds = [...this.#members.keys()];
    const next = () => userIds.pop();
    const worker = async () => {
      for (let userId = next(); userId !== undefined; userId = next()) await this.#refresh(userId);
    };
    await Promise.all(Array.from({ length: Math.min(RESUME_READS, userIds.length) }, worker));
  }

  async #refresh(userId: number): Promise<void> {
    const latest = await this.snapshot(userId);
    if (!latest || latest.version === undefined) return;
    const update = portfolioUpdate(latest);
    let sent = 0;
    for (const stream of [...this.#members.get(userId)]) if (stream.deliver(update)) sent += 1;
    this.deps.metrics.delivered('portfolio', sent);
  }

  /** The user's latest portfolio: the broker's latest-value store, else `loadPortfolio`, else null. */
  async snapshot(userId: number): Promise<PortfolioUpdateEvent | null> {
    const { limits, dependencyWarning } = this.deps;
    try {
      const raw = await withTimeout(this.#readStored(userId), limits.snapshotTimeoutMs, 'portfolio snapshot');
      if (raw !== null) {
        const decoded = decodeEvent('portfolio', raw);
        if (decoded.ok && decoded.event.userId === userId) return decoded.event;
        dropMalformed(this.deps, { userId }, 'dropped malformed stored portfolio');
      }
    } catch (err) {
      dependencyWarning.warn({ err: (err as Error).message }, 'portfolio snapshot read failed');
    }
    return this.load(userId);
  }

  /** The user's portfolio as `loadPortfolio` reads it (the database), or null. */
  async load(userId: number): Promise<PortfolioUpdateEvent | null> {
    const { limits, dependencyWarning } = this.deps;
    if (!this.#load) return null;
    try {
      const loaded = await withTimeout(this.#load(userId), limits.snapshotTimeoutMs, 'portfolio load');
      if (loaded === null) return null;
      const parsed = EVENT_KINDS.portfolio.schema.safeParse(loaded);
      // Never hand a user a portfolio that is not theirs, whatever the loader returned.
      if (parsed.success && parsed.data.userId === userId) return parsed.data;
      this.deps.logger.error({ userId }, 'loadPortfolio returned an invalid portfolio; no snapshot sent');
    } catch (err) {
      dependencyWarning.warn({ err: (err as Error).message }, 'loadPortfolio failed');
    }
    return null;
  }

  readonly #onUpdate = (raw: string, channel = EVENT_CHANNELS.portfolio): void => {
    const event = decodeOrDrop(this.deps, 'portfolio', channel, raw);
    if (!event) return;
    const recipients = this.#members.get(event.userId);
    if (recipients.size === 0) return;
    const update = portfolioUpdate(event);
    let sent = 0;
    for (const stream of recipients) if (stream.deliver(update)) sent += 1;
    this.deps.metrics.delivered('portfolio', sent);
    this.deps.metrics.eventLatency(event.timestamp, Date.now());
  };
}
