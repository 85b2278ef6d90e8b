/** Receives one raw message published on a channel. */
export type MessageHandler = (message: string, channel: string) => void;

/** Removes the handler it was returned for. */
export type Unsubscribe = () => Promise<void>;

/**
 * The seam between publishers and gateways. Three implementations sit side by side:
 * `MemoryBroker` (one process, no Redis), `RedisBroker` (Redis Pub/Sub plus plain keys) and
 * `RedisClusterBroker` (a Redis Cluster's sharded Pub/Sub plus plain keys). All pass the same
 * contract suite (`test/broker.contract.ts`).
 *
 * Delivery is at most once and asynchronous: `publish` resolves once the broker accepted the
 * message, never after subscribers ran.
 */
export interface Broker {
  readonly kind: 'memory' | 'redis' | 'redis-cluster';
  /** Publishes `message` on `channel`. Rejects with `BrokerUnavailableError` when the broker is down. */
  publish(channel: string, message: string): Promise<void>;
  /**
   * Adds `handler` for `channel`. The underlying subscription is made once per channel per
   * process however many handlers are added; it survives broker reconnects.
   */
  subscribe(channel: string, handler: MessageHandler): Promise<Unsubscribe>;
  /** Latest-value store: the last `value` written at `key` wins. */
  setLatest(key: string, value: string): Promise<void>;
  /**
   * Latest-value store that never goes back: writes `value` (JSON carrying `version`) at `key`
   * unless the value stored there is JSON whose numeric `version` is at least `version`, in one
   * atomic step. Resolves with whether it wrote. A stored value without a numeric `version` is
   * replaced.
   */
  setLatestIfNewer(key: string, value: string, version: number): Promise<boolean>;
  /** Removes the value at `key`, if any. */
  deleteLatest(key: string): Promise<void>;
  getLatest(key: string): Promise<string | null>;
  getLatestMany(keys: readonly string[]): Promise<(string | null)[]>;
  /** True while the broker can publish and deliver. */
  isUp(): boolean;
  /** Calls `listener(up)` on each change of `isUp()`. Returns a function that removes it. */
  onStatusChange(listener: (up: boolean) => void): () => void;
  close(): Promise<void>;
}

/** The broker cannot take the operation now (Redis down or reconnecting). */
export class BrokerUnavailableError extends Error {
  readonly code = 'broker_unavailable';
  constructor(message = 'broker unavailable', options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'BrokerUnavailableError';
  }
}

/**
 * Redis answered the command with an error (`WRONGTYPE`, `OOM`, `NOPERM`, …): the connection
 * works, so this is not `BrokerUnavailableError`, and the reply says what is wrong.
 */
export class BrokerCommandError extends Error {
  readonly code = 'broker_command_error';
  /** The reply's first word (`WRONGTYPE`, `OOM`, `NOPERM`, `ERR`, …). */
  readonly reply: string;
  /**
   * The error concerns the value at the command's key (`WRONGTYPE`): the same command on any
   * other key succeeds and this one fails however often it is retried.
   */
  readonly keyBound: boolean;
  constructor(message: string, reply: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'BrokerCommandError';
    this.reply = reply;
    this.keyBound = reply === 'WRONGTYPE';
  }
}

/** The broker was closed by its owner. */
export class BrokerClosedError extends Error {
  readonly code = 'broker_closed';
  constructor() {
    super('broker closed');
    this.name = 'BrokerClosedError';
  }
}
