import {
  BrokerCommandError,
  BrokerUnavailableError,
  createEventPublisher,
  type Broker,
  type ChannelLayout,
  type EventPublisher,
} from '@repo/broker';
import type { OutboxEvent, OutboxRepository } from '@repo/db';
import { EventValidationError } from '@repo/events';
import { silentLogger, type Logger } from '@repo/log';
import { backoffDelay, withTimeout } from '@repo/retry';
import { deleteUntilCaughtUp } from './batched-delete.ts';
import type { ApiMetrics } from './metrics.ts';

/**
 * Longest wait for one event's publish (a PUBLISH, for a portfolio also its compare-and-set).
 * Redis answers in well under a millisecond; a Redis that answers nothing (hung, or a host gone
 * without a reset) would otherwise hold the pass, and with it every user's events, until TCP
 * gives up. A missed deadline fails the pass like any broker failure: the rows stay unpublished
 * and are retried in order (the publish may still land: a duplicate, which gateways drop). 5 s
 * matches the connections' own idle timeout (`SOCKET_IDLE_TIMEOUT_MS` of @repo/redis), which
 * fails the command on a quiet connection; this bounds the pass where other traffic (every
 * order reads the price over the same connection) keeps a silent one from looking idle.
 */
const PUBLISH_TIMEOUT_MS = 5000;

/** What a pass reads from the outbox: nothing, the events past the grace, or every unpublished one. */
type Sweep = 'none' | 'grace' | 'all';

export interface OutboxRelayOptions {
  outbox: OutboxRepository;
  broker: Broker;
  /** Which channel each event goes out on (default the design's names; partitioned in Redis Cluster mode). */
  layout?: ChannelLayout;
  logger?: Logger;
  /** How often the relay looks for unpublished events when nobody kicks it (default 500 ms). */
  pollIntervalMs?: number;
  /**
   * The poll leaves alone events younger than this (default 2000 ms): the process that
   * committed them publishes them itself (`publishCommitted`), and reading them too would
   * publish them twice. Older ones are leftovers (a process that crashed before publishing)
   * and go out.
   */
  sweepGraceMs?: number;
  /** Events read and published per pass (default 500): under a backlog, fewer and larger passes keep up. */
  batchSize?: number;
  /** Delay ceiling of the first retry after a failure (default 100 ms); doubles up to `retryMaxMs`, full jitter. */
  retryBaseMs?: number;
  /** Longest retry delay (default 5000 ms). */
  retryMaxMs?: number;
  /**
   * Published events are kept at least this long (default 24 h). They are the replay history
   * gateways read for `subscribe orders since` (docs/delivery.md).
   */
  retentionMs?: number;
  /** And each user's last this many order events are kept whatever their age (default 1000). */
  retentionEvents?: number;
  /** How often published events past the retention are deleted (default 10 min). */
  pruneIntervalMs?: number;
  /** Rows deleted per statement while pruning (default 1000); a run goes on until caught up. */
  pruneBatchSize?: number;
  metrics?: Pick<ApiMetrics, 'outboxPublished' | 'outboxPublishErrors'>;
  now?: () => Date;
}

/**
 * Publishes the events that order (and logout) transactions recorded in the outbox, and marks
 * them published.
 *
 * - An order hands its committed events over (`publishCommitted`) and never waits for them, so
 *   an order never hangs on the broker. They go out at once, without a read of the outbox:
 *   one database round trip fewer on the way to the socket, and no payload read back.
 * - `kick()` reads every unpublished event instead (a logout, a start).
 * - It polls the outbox too, for events older than `sweepGraceMs`, so it resumes after a crash
 *   of any process (the rows are still unpublished). Younger events belong to the process
 *   that committed them.
 * - Hand-offs wait while a read comes back full (a backlog, older events of the same users
 *   may follow); after a failure (a broker outage) the relay reads the outbox for everything,
 *   in id order, until a read comes back short: events handed over meanwhile are not
 *   published out of turn.
 * - A failed publish stops the pass (later events must not overtake it) and the relay retries
 *   with jittered exponential backoff; a broker coming back up cuts the wait short.
 * - A crash between publish and mark republishes the event. That is allowed: gateways and
 *   clients drop order events whose `seq` they have passed and portfolios whose `version` they
 *   have passed, and fill a `seq` gap from the outbox. Several API processes publish each
 *   their own orders' events, so one user's events from two processes, or a crashed process's
 *   leftover, can reach Redis out of `seq` order (docs/delivery.md).
 */
export class OutboxRelay {
  readonly #outbox: OutboxRepository;
  readonly #broker: Broker;
  readonly #publisher: EventPublisher;
  readonly #logger: Logger;
  readonly #pollIntervalMs: number;
  readonly #sweepGraceMs: number;
  readonly #batchSize: number;
  readonly #retryBaseMs: number;
  readonly #retryMaxMs: number;
  readonly #metrics: OutboxRelayOptions['metrics'];
  readonly #now: () => Date;
  readonly #offStatus: () => void;
  readonly #retentionMs: number;
  readonly #retentionEvents: number;
  readonly #pruneIntervalMs: number;
  readonly #pruneBatchSize: number;
  #pruneTimer: NodeJS.Timeout | undefined;
  /** The poll, on a timer of its own: passes run back to back under load and must not put it off. */
  #pollTimer: NodeJS.Timeout | undefined;
  #pruning: Promise<number> | undefined;

  #started = false;
  #closed = false;
  /** The pass in progress, if any. */
  #running: Promise<void> | undefined;
  /** A kick, a hand-off or the poll arrived during a pass: run another one right after it. */
  #again = false;
  /** Events handed over by the transactions that committed them, by id, in hand-off order. */
  readonly #fresh = new Map<number, OutboxEvent>();
  /**
   * Ids a read published lately, with when they stop mattering: a hand-off that arrives after
   * the read found its rows (a read without the grace, or a commit slow to be answered) is
   * not published a second time.
   */
  readonly #readLately = new Map<number, number>();
  /** What the next pass reads from the outbox: nothing, events past the grace, or everything. */
  #sweep: Sweep = 'none';
  /**
   * A pass failed: until a read of the whole outbox finds less than a batch, every event goes
   * out through that read, in id order, and hand-offs only ask for it.
   */
  #recovering = false;
  /** The retry backoff's timer. */
  #timer: NodeJS.Timeout | undefined;
  /** A backoff is running: kicks and hand-offs wait for it instead of hammering. */
  #backingOff = false;
  #failures = 0;

  constructor(options: OutboxRelayOptions) {
    this.#outbox = options.outbox;
    this.#broker = options.broker;
    this.#publisher = createEventPublisher(options.broker, options.layout ? { layout: options.layout } : {});
    this.#logger = options.logger ?? silentLogger;
    this.#pollIntervalMs = positive('pollIntervalMs', options.pollIntervalMs ?? 500);
    this.#sweepGraceMs = positive('sweepGraceMs', options.sweepGraceMs ?? 2000);
    this.#batchSize = positive('batchSize', options.batchSize ?? 500);
    this.#retryBaseMs = positive('retryBaseMs', options.retryBaseMs ?? 100);
    this.#retryMaxMs = positive('retryMaxMs', options.retryMaxMs ?? 5000);
    this.#retentionMs = positive('retentionMs', options.retentionMs ?? 24 * 60 * 60 * 1000);
    this.#retentionEvents = Math.floor(positive('retentionEvents', options.retentionEvents ?? 1000));
    this.#pruneIntervalMs = positive('pruneIntervalMs', options.pruneIntervalMs ?? 10 * 60 * 1000);
    this.#pruneBatchSize = Math.floor(positive('pruneBatchSize', options.pruneBatchSize ?? 1000));
    this.#metrics = options.metrics;
    this.#now = options.now ?? (() => new Date());
    this.#offStatus = this.#broker.onStatusChange((up) => {
      if (up) this.#wake();
    });
  }

  /** Starts relaying: a first pass now, then polls. */
  start(): void {
    if (this.#started || this.#closed) return;
    this.#started = true;
    this.kick();
    this.#pollTimer = setInterval(() => this.#poll(), this.#pollIntervalMs);
    this.#pollTimer.unref();
    this.#pruneTimer = setInterval(() => void this.prune(), this.#pruneIntervalMs);
    this.#pruneTimer.unref();
  }

  /**
   * Deletes published events older than the retention (the table would otherwise grow with
   * every order), batch after batch until none is left, so pruning keeps up with any order
   * rate. Runs on its own timer; never throws.
   */
  prune(): Promise<number> {
    // One pruning pass at a time: a pass longer than the interval is joined, not doubled.
    this.#pruning ??= this.#prunePass().finally(() => {
      this.#pruning = undefined;
    });
    return this.#pruning;
  }

  async #prunePass(): Promise<number> {
    try {
      const cutoff = new Date(this.#now().getTime() - this.#retentionMs);
      const deleted = await deleteUntilCaughtUp(
        (limit) => this.#outbox.prunePublished(cutoff, limit, this.#retentionEvents),
        this.#pruneBatchSize,
        () => this.#closed,
      );
      if (deleted > 0) this.#logger.debug({ deleted }, 'pruned published outbox events');
      return deleted;
    } catch (err) {
      this.#logger.warn({ err: (err as Error).message }, 'outbox prune failed');
      return 0;
    }
  }

  /**
   * Publishes events just committed (by this process), as soon as possible and without reading
   * them back. Never throws, never waits. Events it cannot publish stay unpublished in the
   * outbox, where the relay's reads find them.
   */
  publishCommitted(events: readonly OutboxEvent[]): void {
    if (!this.#started || this.#closed || events.length === 0) return;
    if (this.#recovering) return this.kick();
    for (const event of events) if (!this.#readLately.has(event.id)) this.#fresh.set(event.id, event);
    if (this.#fresh.size > 0) this.#request();
  }

  /** Asks for a pass that reads every unpublished event, as soon as possible. Never throws, never waits. */
  kick(): void {
    this.#sweep = 'all';
    this.#request();
  }

  /** The poll: a pass that reads the events past the grace. */
  #poll(): void {
    if (this.#sweep === 'none') this.#sweep = 'grace';
    this.#request();
  }

  #request(): void {
    if (!this.#started || this.#closed) return;
    if (this.#running) {
      this.#again = true;
      return;
    }
    if (this.#backingOff) return;
    this.#pass();
  }

  /** Resolves when the pass in progress (if any) has finished. For tests and shutdown. */
  async idle(): Promise<void> {
    while (this.#running) await this.#running;
  }

  /** Stops the relay; resolves after the pass in progress. Unpublished rows stay for the next start. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#offStatus();
    clearInterval(this.#pruneTimer);
    clearInterval(this.#pollTimer);
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    // A pruning pass stops between batches once closed; its statements end before this does.
    await Promise.all([this.idle(), this.#pruning]);
  }

  /** Broker back up: skip the rest of the backoff. */
  #wake(): void {
    if (!this.#started || this.#closed) return;
    this.#backingOff = false;
    this.kick();
  }

  #pass(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#backingOff = false;
    this.#running = this.#drain().finally(() => {
      this.#running = undefined;
      // A request that landed after the last batch was read but before this point.
      if (this.#again && !this.#backingOff) this.#request();
    });
  }

  async #drain(): Promise<void> {
    // Published and not yet marked: marked by the next batch's read, or at the end of the pass.
    const published: number[] = [];
    try {
      try {
        do {
          this.#again = false;
          const sweep = this.#recovering ? 'all' : this.#sweep;
          this.#sweep = 'none';
          let caughtUp = true;
          if (sweep !== 'none') {
            const count = await this.#sweepBatch(published, sweep === 'grace' ? this.#sweepGraceMs : 0);
            if (count === this.#batchSize) {
              // A full batch means there may be more right behind it, older events of the users
              // whose newer ones wait in the hand-offs among them: those wait for the rest. A
              // kick that came meanwhile still reads everything.
              caughtUp = false;
              // (A kick may have set it during the read's await.)
              if ((this.#sweep as Sweep) !== 'all') this.#sweep = sweep;
              this.#again = true;
            } else {
              this.#recovering = false;
            }
          }
          if (caughtUp && this.#fresh.size > 0 && !this.#recovering) await this.#publishFresh(published);
        } while (this.#again && !this.#closed);
      } finally {
        if (published.length > 0) await this.#outbox.markPublished(published.splice(0), this.#now());
      }
      this.#failures = 0;
    } catch (err) {
      // What was handed over and not published is still in the outbox: from now on the reads
      // publish everything, in id order, so nothing newer overtakes it.
      this.#recovering = true;
      this.#fresh.clear();
      this.#failures++;
      const delay = this.#retryDelay();
      const reason = failureReason(err);
      this.#metrics?.outboxPublishErrors.inc({ reason });
      // The first failure of an outage is worth a warning; the retries that follow are not. A
      // command Redis refuses (OOM, NOPERM) holds every user back until someone acts: an error.
      const level = this.#failures > 1 ? 'debug' : reason === 'broker_error' ? 'error' : 'warn';
      this.#logger[level]({ reason, err: describe(err), retryInMs: delay }, 'outbox relay pass failed');
      this.#backOff(delay);
    }
  }

  /** Waits `delayMs` (kicks and hand-offs wait too; a broker coming back cuts it short), then reads everything. */
  #backOff(delayMs: number): void {
    if (this.#closed) return;
    this.#backingOff = true;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#backingOff = false;
      this.kick();
    }, delayMs);
    // A relay someone forgot to close must not keep the process alive.
    this.#timer.unref();
  }

  /** Full-jitter exponential backoff, capped. */
  #retryDelay(): number {
    return backoffDelay(this.#failures - 1, { baseDelayMs: this.#retryBaseMs, maxDelayMs: this.#retryMaxMs });
  }

  /**
   * Marks `published` (emptying it) while reading the next batch of unpublished events at
   * least `minAgeMs` old, publishes that batch in id order and adds the ids that went out to
   * `published`. Returns how many rows it read. A failed read loses the marks, so those events
   * go out again: allowed, like a crash between publish and mark.
   */
  async #sweepBatch(published: number[], minAgeMs: number): Promise<number> {
    const rows =
      published.length > 0
        ? await this.#outbox.markPublishedAndRead(published.splice(0), this.#now(), this.#batchSize, minAgeMs)
        : await this.#outbox.unpublished(this.#batchSize, minAgeMs);
    // Read here, so not to be published again from the hand-offs, those already in and those
    // still to come.
    const now = performance.now();
    for (const [id, until] of this.#readLately) {
      if (until > now) break;
      this.#readLately.delete(id);
    }
    for (const row of rows) {
      this.#fresh.delete(row.id);
      this.#readLately.set(row.id, now + this.#sweepGraceMs);
    }
    await this.#publishRows(rows, published);
    return rows.length;
  }

  /**
   * Publishes the events handed over since the last pass. In id order: a user's events were
   * recorded one transaction after another (the user's row lock), so their ids follow their
   * commits even when two of their commits were answered out of order.
   */
  async #publishFresh(published: number[]): Promise<void> {
    const rows = [...this.#fresh.values()].sort((a, b) => a.id - b.id);
    this.#fresh.clear();
    await this.#publishRows(rows, published);
  }

  /** Publishes `rows` (in id order), adding the ids that went out to `published`; throws on a failure. */
  async #publishRows(rows: readonly OutboxEvent[], published: number[]): Promise<void> {
    if (rows.length === 0) return;
    // A broker that says it is down (e.g. Redis publisher back but subscriber still
    // reconnecting) is not tried: the relay waits for its status change instead of publishing
    // into a half-connected broker.
    if (!this.#broker.isUp()) throw new BrokerUnavailableError('broker is down');
    // Order only matters within a user (seq, version), so each user's events go out one after
    // another while different users' go out together: their publishes share the broker
    // connection's pipeline instead of waiting a round trip each. A failure stops its user's
    // lane only; the other lanes finish, and the lane's unpublished rows are retried in order.
    const lanes = new Map<number, OutboxEvent[]>();
    for (const row of rows) {
      const lane = lanes.get(row.userId);
      if (lane) lane.push(row);
      else lanes.set(row.userId, [row]);
    }
    const results = await Promise.allSettled([...lanes.values()].map((lane) => this.#publishLane(lane, published)));
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
  }

  /** Publishes one user's events in order, adding each published id to `done`; stops at the first failure. */
  async #publishLane(lane: readonly OutboxEvent[], done: number[]): Promise<void> {
    for (const row of lane) {
      if (this.#closed) return;
      try {
        await withTimeout(this.#publish(row), PUBLISH_TIMEOUT_MS, `publishing outbox event ${row.id}`);
        this.#metrics?.outboxPublished.inc({ kind: row.kind });
      } catch (err) {
        if (err instanceof EventValidationError) {
          // A row that can never be published would block every later event forever. It
          // cannot come from this code (payloads are built to the schemas), so it is logged
          // loudly, counted and skipped.
          this.#metrics?.outboxPublishErrors.inc({ reason: 'invalid_event' });
          this.#logger.error(
            { outboxId: row.id, kind: row.kind, err: err.message },
            'outbox event fails its schema; skipped',
          );
        } else if (err instanceof BrokerCommandError && err.keyBound) {
          // Redis refuses this row's key (a value of the wrong type at the user's portfolio
          // key) and will refuse it on every retry. Held, the row would stop its user's events
          // for good, and once its user's rows filled a batch, everyone's. Skipped, it costs
          // only the stored snapshot: the publisher still publishes a portfolio whose store
          // was refused, so the newer portfolio reaches the user live, and an order event
          // would still be in the history, where gateways fill the gap by `seq`.
          this.#metrics?.outboxPublishErrors.inc({ reason: 'broker_rejected' });
          this.#logger.error(
            { outboxId: row.id, userId: row.userId, kind: row.kind, err: err.message },
            'redis refuses an outbox event; skipped',
          );
        } else {
          throw err;
        }
      }
      done.push(row.id);
    }
  }

  async #publish(row: OutboxEvent): Promise<void> {
    // The payloads are validated again by the publisher before they reach the broker.
    const payload = row.payload as never;
    switch (row.kind) {
      case 'order_filled':
        await this.#publisher.publishOrderFilled(payload);
        return;
      case 'order_rejected':
        await this.#publisher.publishOrderRejected(payload);
        return;
      case 'portfolio':
        await this.#publisher.publishPortfolioUpdate(payload);
        return;
      case 'session_revoked':
        // The row knows the session's user: with it the revocation goes to that user's
        // partition only (Redis Cluster mode) instead of to every partition.
        await this.#publisher.publishSessionRevoked({ ...(row.payload as object), userId: row.userId } as never);
        return;
      default:
        throw new EventValidationError(String(row.kind), [{ path: 'kind', message: 'unknown outbox kind' }]);
    }
  }
}

function failureReason(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code;
  if (code === 'broker_unavailable' || code === 'broker_closed') return 'broker_unavailable';
  // The relay's own deadline: the broker took the command and never answered.
  if (code === 'timeout') return 'broker_timeout';
  if (code === 'broker_command_error') return 'broker_error';
  if (code === 'database_error') return 'database';
  return 'other';
}

/** The error's message and its cause's, which says what Redis or the socket said. */
function describe(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const cause = err.cause instanceof Error ? err.cause.message : undefined;
  return cause && !err.message.includes(cause) ? `${err.message}: ${cause}` : err.message;
}

function positive(name: string, value: number): number {
  if (!Number.isFinite(value) || value <= 0)
    throw new RangeError(`OutboxRelay option ${name} must be a positive number, got ${value}`);
  return value;
}
