/**
 * One load process of the connections benchmark: opens its share of the 100,000 sockets on the
 * lean raw client, each subscribed to `prices` anonymously, answers the heartbeat's pings,
 * stamps when each socket receives the tick it is told to expect, and reconnects whatever the
 * gateway closes the way `@repo/client` does: `nextReconnectAttempt` from `@repo/client` and
 * `backoffDelay` from `@repo/retry` with the SDK's defaults (base 250 ms, cap 10 s), the
 * attempt counted up on every scheduled retry and started over once a socket was subscribed.
 *
 * A client is "open" for the SDK once it is subscribed again, so that is when this one counts a
 * socket back. Started by the coordinator with an IPC channel; its config is argv[2] as JSON.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { nextReconnectAttempt } from '@repo/client';
import { backoffDelay, type BackoffOptions } from '@repo/retry';
import { monoMs } from '../lib/clock.ts';
import { seqFromPriceFrame } from '../load/fleet.ts';
import { RawWsClient, type RawWsHandlers } from '../load/raw-ws-client.ts';
import { emptyCounters, type Counters, type FromLoad, type LoadConfig, type ToLoad } from './messages.ts';

/** The SDK's defaults (`ClientOptions.reconnect`). */
const SDK_BACKOFF: BackoffOptions = { baseDelayMs: 250, maxDelayMs: 10_000 };
/** A subscribe reply is short and starts like this; price ticks never do. */
const SUBSCRIBED_PREFIX = Buffer.from('{"type":"subscribed"');
const SUBSCRIBE = JSON.stringify({ type: 'subscribe', channel: 'prices' });
/**
 * Longest wait from the connect to the upgrade response: the SDK's `openTimeoutMs`, after which
 * it closes the socket and reconnects on its backoff (it was 30 s here, longer than the SDK
 * waits, until 2026-11-29 14:07 UTC).
 */
const UPGRADE_TIMEOUT_MS = 10_000;
/**
 * Longest wait for the `subscribed` reply: the SDK's `requestTimeoutMs`, after which it gives
 * the socket up and reconnects (its attempt count growing, the socket never having been open).
 */
const SUBSCRIBE_TIMEOUT_MS = 10_000;

const config = JSON.parse(process.argv[2]!) as LoadConfig;
// monoMs, not fastMonoClock: its offset, taken at start-up, is off by performance.now()'s lazy
// initialisation (tens of ms on a loaded machine), and a socket stamps one tick at a time here.
const now = monoMs;
const send = (message: FromLoad) => process.send!(message);

class Slot implements RawWsHandlers {
  client: RawWsClient | null = null;
  subscribed = false;
  connecting = false;
  attempt = 0;
  /** Holds one of the initial open's `openConcurrency` places until it fails or subscribes. */
  holdsPlace = false;
  readonly index: number;
  readonly address: string;

  constructor(index: number) {
    this.index = index;
    this.address = config.addresses[index % config.addresses.length]!;
  }

  onText(data: Buffer, start: number, end: number, client: RawWsClient): void {
    if (!this.subscribed) {
      if (
        end - start < SUBSCRIBED_PREFIX.length ||
        data.compare(SUBSCRIBED_PREFIX, 0, SUBSCRIBED_PREFIX.length, start, start + SUBSCRIBED_PREFIX.length) !== 0
      ) {
        // An error reply: the SDK would reconnect and resubscribe; so does this client.
        if (data.includes('"type":"error"', start)) client.destroy();
        return;
      }
      this.subscribed = true;
      subscribedCount += 1;
      subscribeTimes.push(now());
      if (this.holdsPlace) {
        this.holdsPlace = false;
        releasePlace();
      }
      if (opening && subscribedCount === slots.length) onOpened();
      return;
    }
    if (expected === 0) return;
    const seq = seqFromPriceFrame(data, start, end);
    if (seq === expected && receipts[this.index] === 0) receipts[this.index] = now();
  }

  onClose(code: number): void {
    const wasOpen = this.subscribed;
    if (code === 1006 && wasOpen && this.client && !closing) {
      const key = heartbeatState(this.client);
      counters.abnormal[key] = (counters.abnormal[key] ?? 0) + 1;
    }
    if (wasOpen) subscribedCount -= 1;
    this.subscribed = false;
    this.client = null;
    if (closing) return;
    counters.closes[code] = (counters.closes[code] ?? 0) + 1;
    this.attempt = nextReconnectAttempt(this.attempt, wasOpen, code);
    this.#retry();
  }

  connect(): void {
    this.connecting = true;
    counters.attempts += 1;
    RawWsClient.open(config.host, config.port, '/', this, {
      localAddress: this.address,
      timeoutMs: UPGRADE_TIMEOUT_MS,
    }).then(
      (client) => {
        this.connecting = false;
        if (closing) return client.destroy();
        this.client = client;
        client.sendText(SUBSCRIBE);
        setTimeout(() => {
          if (this.client !== client || this.subscribed) return;
          counters.failures['subscribe timeout'] = (counters.failures['subscribe timeout'] ?? 0) + 1;
          counters.retried += 1;
          client.destroy();
        }, SUBSCRIBE_TIMEOUT_MS);
      },
      (err: Error) => {
        this.connecting = false;
        const cause = failureCause(err);
        counters.failures[cause] = (counters.failures[cause] ?? 0) + 1;
        if (closing) return;
        // A socket that never got subscribed: the attempt count keeps growing.
        this.attempt = nextReconnectAttempt(this.attempt, false, undefined);
        counters.retried += 1;
        this.#retry();
        if (this.holdsPlace) {
          this.holdsPlace = false;
          releasePlace();
        }
      },
    );
  }

  #retry(): void {
    const delay = backoffDelay(this.attempt, SDK_BACKOFF);
    this.attempt += 1;
    setTimeout(() => queueConnect(this), delay);
  }
}

// ---- retries, a slice per turn of the event loop -----------------------------------------------

/**
 * Retries started per turn of the event loop. One process stands in for ~14,000 browsers on a
 * share of two cores: when its loop falls behind, every retry timer that came due meanwhile
 * fires in the same turn, and thousands of connects at once held the loop for 10–55 s in the
 * runs of 2026-11-29 13:50 UTC. The sockets already subscribed then answered the heartbeat's
 * pings too late and were closed (1006), so the storm undid its own progress. A browser's
 * retry costs no other browser anything; here, retries are started in slices, and the pongs
 * owed by the open sockets go out between them.
 */
const CONNECTS_PER_TURN = 100;
let connectQueue: Slot[] = [];
let connectHead = 0;
let connectsScheduled = false;

function queueConnect(slot: Slot): void {
  connectQueue.push(slot);
  if (!connectsScheduled) {
    connectsScheduled = true;
    setImmediate(startQueuedConnects);
  }
}

function startQueuedConnects(): void {
  const end = Math.min(connectQueue.length, connectHead + CONNECTS_PER_TURN);
  for (; connectHead < end; connectHead++) {
    const slot = connectQueue[connectHead]!;
    if (!closing && slot.client === null && !slot.connecting) slot.connect();
  }
  if (connectHead < connectQueue.length) {
    setImmediate(startQueuedConnects);
    return;
  }
  connectQueue = [];
  connectHead = 0;
  connectsScheduled = false;
}

/** What a socket closed abnormally had last seen of the heartbeat (its 25 s ping, 10 s deadline). */
function heartbeatState(client: RawWsClient): string {
  if (client.lastPingAt === 0) return 'never pinged';
  const age = performance.now() - client.lastPingAt;
  const when = age < 10_000 ? 'pinged <10 s ago' : age < 25_000 ? 'pinged 10-25 s ago' : 'pinged >25 s ago';
  const pong = `pong ${client.lastPongAt >= client.lastPingAt ? 'written' : 'owed'}`;
  const transit = client.lastPingTransitMs;
  if (transit < 0) return `${when}, ${pong}`;
  const took = transit < 1000 ? '<1 s' : transit < 5000 ? '1-5 s' : transit < 10_000 ? '5-10 s' : '>10 s';
  return `${when}, it took ${took} to arrive, ${pong}`;
}

function failureCause(err: Error & { code?: string }): string {
  if (err.code) return err.code;
  const status = /upgrade refused: HTTP\/1\.1 (\d{3})/.exec(err.message);
  if (status) return `HTTP ${status[1]}`;
  if (err.message.includes('timed out')) return 'upgrade timeout';
  return err.message.slice(0, 60);
}

const loopDelay = monitorEventLoopDelay({ resolution: 20 });
loopDelay.enable();
const slots = Array.from({ length: config.clients }, (_, i) => new Slot(i));
const counters: Counters = emptyCounters();
let subscribedCount = 0;
let subscribeTimes: number[] = [];
const receipts = new Float64Array(config.clients);
let expected = 0;
let closing = false;

// ---- the initial open: at most `openConcurrency` upgrades in flight ---------------------------

let opening = false;
let openStartedAt = 0;
let nextToOpen = 0;
let inFlight = 0;

function openMore(): void {
  while (inFlight < config.openConcurrency && nextToOpen < slots.length) {
    inFlight += 1;
    const slot = slots[nextToOpen++]!;
    slot.holdsPlace = true;
    slot.connect();
  }
}

function releasePlace(): void {
  inFlight -= 1;
  openMore();
}

function onOpened(): void {
  opening = false;
  send({ type: 'opened', startedAt: openStartedAt, times: subscribeTimes, counters: snapshot() });
  subscribeTimes = [];
}

function snapshot(): Counters {
  return { ...counters, subscribed: subscribedCount, pings: RawWsClient.pings.count };
}

process.on('message', (message: ToLoad) => {
  switch (message.type) {
    case 'open':
      opening = true;
      openStartedAt = monoMs();
      openMore();
      break;
    case 'expect':
      receipts.fill(0);
      expected = message.seq;
      break;
    case 'collect': {
      let missing = 0;
      const times: number[] = [];
      for (const t of receipts) {
        if (t === 0) missing += 1;
        else times.push(t);
      }
      send({ type: 'receipts', seq: expected, times, missing });
      expected = 0;
      break;
    }
    case 'storm':
      counters.closes = {};
      counters.abnormal = {};
      counters.failures = {};
      counters.retried = 0;
      counters.attempts = 0;
      subscribeTimes = [];
      break;
    case 'status': {
      const cpu = process.cpuUsage();
      send({
        type: 'status',
        counters: snapshot(),
        subscribeTimes: message.times ? subscribeTimes : [],
        cpuMs: Math.round((cpu.user + cpu.system) / 1000),
        loopDelayMaxMs: Math.round(loopDelay.max / 1e6),
      });
      loopDelay.reset();
      break;
    }
    case 'close':
      closing = true;
      for (const slot of slots) slot.client?.destroy();
      process.exit(0);
  }
});
process.on('disconnect', () => process.exit(0));
send({ type: 'ready' });
