import type { Logger } from '@repo/log';
import { backoffDelay } from '@repo/retry';
import { positiveOption as positive, type HermesClient } from './hermes-client.ts';
import { PriceSourceError, type PriceStream, type PriceStreamListener } from './price-source.ts';
import { priceUpdateQuery, type FeedPlan, type PythFeeds } from './pyth-feeds.ts';
import { SseDecoder, type SseEvent } from './sse-decoder.ts';

export interface PythStreamOptions {
  /**
   * A fresh connection is opened this long after the current one, and the old one closed once
   * the new one answers: Hermes ends every stream after 24 h. Default 23 h.
   */
  renewAfterMs?: number;
  /**
   * A connection that sends nothing for this long, not even the keep-alive comment Hermes
   * writes every 15 s, is presumed dead and replaced. Default 45000.
   */
  idleTimeoutMs?: number;
  /** Ceiling of the first reconnect delay (full jitter, doubling per failure). Default 500. */
  reconnectBaseDelayMs?: number;
  /** No reconnect waits longer than this, unless Hermes' Retry-After says so. Default 30000. */
  reconnectMaxDelayMs?: number;
  /** Longest accepted event. Default 1 MiB (an update of three feeds is ~3 KiB). */
  maxEventChars?: number;
  /** For tests: the jitter's random source. */
  random?: () => number;
}

export interface PythStreamStats {
  /** A connection is open now. */
  up: boolean;
  /** Connections opened (renewals included). */
  connects: number;
  /** Connections replaced before Hermes' 24 h limit. */
  renewals: number;
  /** `event: error` messages Hermes sent. */
  errorEvents: number;
}

interface Connection {
  readonly controller: AbortController;
  readonly response: Response;
  readonly plan: FeedPlan;
  /** The last `event: error` message, to say why Hermes ended the stream. */
  lastError?: string;
  /** It delivered an update: a connection that ends without one does not reset the backoff. */
  delivered?: boolean;
}

const STREAM_PATH = 'v2/updates/price/stream';
/** A repeated stream problem (bad event, error event) is logged at most this often. */
const REPEAT_LOG_INTERVAL_MS = 60_000;
const MAX_REMEMBERED_MESSAGES = 100;

/**
 * Pyth's SSE transport: one `GET /v2/updates/price/stream?ids[]=…&parsed=true` for every
 * symbol, decoded into quotes by the shared `PythFeeds`. The connection is reconnected with
 * capped full-jitter backoff (never sooner than a 429's Retry-After), renewed make-before-break
 * before Hermes' 24 h limit, and replaced when it falls silent. A 403 or 404 naming feeds drops
 * those feeds and reconnects at once with the rest.
 */
export function createPythStream(
  client: HermesClient,
  feeds: PythFeeds,
  logger: Logger,
  options: PythStreamOptions = {},
): PriceStream & { stats(): PythStreamStats } {
  const renewAfterMs = positive('renewAfterMs', options.renewAfterMs, 23 * 3_600_000);
  const idleTimeoutMs = positive('idleTimeoutMs', options.idleTimeoutMs, 45_000);
  const backoff = {
    baseDelayMs: positive('reconnectBaseDelayMs', options.reconnectBaseDelayMs, 500),
    maxDelayMs: positive('reconnectMaxDelayMs', options.reconnectMaxDelayMs, 30_000),
  };
  const maxEventChars = positive('maxEventChars', options.maxEventChars, 1024 * 1024);
  const random = options.random ?? Math.random;

  let listener: PriceStreamListener | undefined;
  let symbols: string[] = [];
  let lifetime = new AbortController();
  let current: Connection | undefined;
  let connecting = false;
  let up = false;
  let failures = 0;
  let retryTimer: NodeJS.Timeout | undefined;
  let renewTimer: NodeJS.Timeout | undefined;
  const tasks = new Set<Promise<unknown>>();
  const stats = { connects: 0, renewals: 0, errorEvents: 0 };
  const lastLogged = new Map<string, number>();

  const isOpen = () => listener !== undefined && !lifetime.signal.aborted;

  function track(task: Promise<unknown>): void {
    tasks.add(task);
    void task.finally(() => tasks.delete(task));
  }

  function setUp(next: boolean): void {
    if (up === next) return;
    up = next;
    listener?.state(next);
  }

  /** Logs `msg` for `key` once, then at most once a minute: a flapping stream must not flood. */
  function logRepeated(key: string, data: Record<string, unknown>, msg: string): void {
    const at = Date.now();
    const last = lastLogged.get(key);
    if (last !== undefined && at - last < REPEAT_LOG_INTERVAL_MS) logger.debug(data, msg);
    else {
      // Error messages can carry counters ("Lagged(3)"): forget them rather than grow forever.
      if (lastLogged.size >= MAX_REMEMBERED_MESSAGES) lastLogged.clear();
      lastLogged.set(key, at);
      logger.warn(data, msg);
    }
  }

  /** Opens a connection for the feeds still wanted; undefined when none is left to stream. */
  async function openConnection(): Promise<Connection | undefined> {
    const controller = new AbortController();
    const signal = AbortSignal.any([lifetime.signal, controller.signal]);
    for (;;) {
      const plan = feeds.plan(symbols);
      if (plan.size === 0) return undefined;
      try {
        const response = await client.openStream(STREAM_PATH, priceUpdateQuery(plan), signal);
        return { controller, response, plan };
      } catch (err) {
        // Each retry drops at least one feed, so this ends.
        if (feeds.dropRefused(err)) continue;
        throw err;
      }
    }
  }

  /** Opens a connection; when one is already open, this is its renewal. */
  function connect(): void {
    if (!isOpen() || connecting) return;
    connecting = true;
    track(
      openConnection().then(
        (connection) => {
          connecting = false;
          if (!isOpen()) return connection?.controller.abort();
          if (connection) return adopt(connection);
          logger.error('Pyth stream: no feed left to stream (every feed was dropped)');
        },
        (err: unknown) => {
          connecting = false;
          if (!isOpen()) return;
          const error = err as Partial<PriceSourceError>;
          if (current) {
            logger.warn(
              { code: error.code, err: error.message },
              'Pyth stream renewal failed; the open connection goes on and renewal is tried again',
            );
            scheduleRenewal(Math.min(renewAfterMs, 60_000));
          } else {
            scheduleReconnect(error);
          }
        },
      ),
    );
  }

  function adopt(connection: Connection): void {
    const previous = current;
    current = connection;
    clearTimeout(retryTimer);
    stats.connects++;
    if (previous) {
      stats.renewals++;
      previous.controller.abort();
      logger.info('Pyth stream renewed before the 24 h limit');
    } else {
      logger.info({ feeds: [...connection.plan.values()].flat() }, 'Pyth stream connected');
    }
    setUp(true);
    scheduleRenewal(renewAfterMs);
    track(pump(connection).then((reason) => ended(connection, reason)));
  }

  function ended(connection: Connection, reason: string): void {
    if (connection !== current || !isOpen()) return;
    current = undefined;
    clearTimeout(renewTimer);
    setUp(false);
    const why = connection.lastError ? `${reason} (${connection.lastError})` : reason;
    // Only a connection that worked resets the backoff: one that Hermes (or a proxy) accepts and
    // drops at once must not be reopened several times a second.
    if (connection.delivered) failures = 0;
    logRepeated('ended', { reason: why, failures }, 'Pyth stream ended; reconnecting, polling meanwhile');
    // A renewal already under way becomes the reconnection.
    if (!connecting) scheduleReconnect(undefined);
  }

  function scheduleReconnect(error: Partial<PriceSourceError> | undefined): void {
    const delayMs = Math.max(
      backoffDelay(failures, backoff, random),
      client.rateLimitedForMs(),
      error?.retryAfterMs ?? 0,
    );
    failures++;
    if (error) {
      logRepeated(
        `connect:${error.code ?? 'unknown'}`,
        { code: error.code, err: error.message, failures, retryInMs: delayMs },
        'Pyth stream could not connect; polling meanwhile',
      );
    }
    clearTimeout(retryTimer);
    retryTimer = setTimeout(connect, delayMs);
  }

  function scheduleRenewal(delayMs: number): void {
    clearTimeout(renewTimer);
    renewTimer = setTimeout(connect, delayMs);
  }

  /** Reads a connection until it ends; resolves to why it ended. */
  async function pump(connection: Connection): Promise<string> {
    const body = connection.response.body;
    if (!body) return 'the response has no body';
    const reader = body.getReader();
    const decoder = new SseDecoder(maxEventChars);
    const text = new TextDecoder();
    let silent = false;
    const watchdog = setTimeout(() => {
      silent = true;
      connection.controller.abort();
    }, idleTimeoutMs);
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) return 'Hermes closed the stream';
        watchdog.refresh();
        for (const event of decoder.push(text.decode(value, { stream: true }))) handle(event, connection);
      }
    } catch (err) {
      if (silent) return `nothing received for ${idleTimeoutMs} ms`;
      if (connection.controller.signal.aborted || lifetime.signal.aborted) return 'closed';
      if (err instanceof RangeError) return err.message;
      return `the connection broke: ${(err as Error)?.message ?? String(err)}`;
    } finally {
      clearTimeout(watchdog);
      await reader.cancel().catch(() => {});
    }
  }

  function handle(event: SseEvent, connection: Connection): void {
    if (event.event === 'error') {
      stats.errorEvents++;
      connection.lastError = event.data.slice(0, 200);
      logRepeated(`event:${connection.lastError}`, { message: connection.lastError }, 'Hermes sent an error event');
      return;
    }
    if (event.event !== 'message') return;
    let parsed: unknown;
    try {
      parsed = (JSON.parse(event.data) as { parsed?: unknown } | null)?.parsed;
    } catch {
      parsed = undefined;
    }
    if (!Array.isArray(parsed)) {
      logRepeated(
        'bad-event',
        { data: event.data.slice(0, 200) },
        'Pyth stream event without a "parsed" array, skipped',
      );
      return;
    }
    connection.delivered = true;
    const { quotes } = feeds.quotes(parsed, connection.plan);
    if (quotes.length > 0 && connection === current && isOpen()) listener?.quotes(quotes);
  }

  return {
    open(streamSymbols, streamListener) {
      if (listener) throw new Error('pyth stream: already open');
      listener = streamListener;
      symbols = [...streamSymbols];
      lifetime = new AbortController();
      failures = 0;
      connect();
    },

    async close() {
      lifetime.abort();
      clearTimeout(retryTimer);
      clearTimeout(renewTimer);
      current = undefined;
      await Promise.allSettled([...tasks]);
      up = false;
      listener = undefined;
    },

    stats() {
      return { up, ...stats };
    },
  };
}
