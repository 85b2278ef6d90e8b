import { decodeEvent, EVENT_KINDS, type PortfolioUpdateEvent } from '@repo/events';
import { withTimeout } from '@repo/retry';
import { EVENT_CHANNELS } from '../broker-contract.ts';
import { encodeTextFrame } from '../transport/text-frame.ts';
import { PortfolioStream, type PortfolioUpdate } from './portfolio-stream.ts';
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
    const update: PortfolioUpdate = { event, frame: encodeTextFrame(JSON.stringify({ type: 'portfolio', ...event })) };
    let sent = 0;
    for (const stream of recipients) if (stream.deliver(update)) sent += 1;
    this.deps.metrics.delivered('portfolio', sent);
    this.deps.metrics.eventLatency(event.timestamp, Date.now());
  };
}
