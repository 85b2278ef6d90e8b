/**
 * The publisher thread of the load generator. It has its own event loop, so publishing on time
 * does not depend on how busy the receiving thread is, and it publishes the way the real
 * publishers do: to Redis, in the contract's shape (`@repo/events` validation included), or
 * through `@socket.io/redis-emitter` for the Socket.IO baseline.
 *
 * Two modes:
 * - `window`: keeps at most `window` events ahead of the slowest client (closed loop), for the
 *   throughput scenario: the server is always busy, never buried.
 * - `rate`: `rate` events per second on a fixed schedule (open loop), for latency.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { Emitter } from '@socket.io/redis-emitter';
import { createClient } from 'redis';
import { connectRedisBroker, createEventPublisher, partitionedChannelLayout } from '@repo/broker';
import { monoMs, sleep } from '../lib/clock.ts';
import { CAPACITY, CTL, priceForSeq, viewShared, type SharedBuffers } from './shared-state.ts';

/** What the thread publishes to; fixed for its lifetime. */
export interface PublisherConfig {
  redisUrl: string;
  /** `contract`: `@repo/events` publishers on the tradewire channels; `socketio`: the emitter. */
  via: 'contract' | 'socketio';
  kind: 'price' | 'order';
  /** Order events: the users to address, picked at random. */
  userIds?: number[];
  /** Price events (contract only): the symbols, in turn by seq (seq mod their count); default SOL. */
  symbols?: string[];
  /** Contract only: publish on the partitioned channel layout with this many user partitions. */
  partitions?: number;
  buffers: SharedBuffers;
}

/** One publishing run; a thread serves several (the latency steps), numbering on. */
export interface PublishRun {
  mode: 'window' | 'rate';
  /** Events in flight (window mode). */
  window?: number;
  /** Events per second (rate mode). */
  rate?: number;
  /** Rate mode: events before the measured window, then events inside it. */
  warmupEvents?: number;
  measuredEvents?: number;
  /** First seq of this run. */
  firstSeq: number;
}

/** Messages the receiving thread sends. */
export type PublisherCommand = { type: 'run'; run: PublishRun } | { type: 'wake' } | { type: 'close' };
/** Messages the publisher thread sends. */
export type PublisherEvent = { type: 'ready' } | { type: 'done'; published: number } | { type: 'closed' };

const config = workerData as PublisherConfig;

const { control, sendTimes, targets } = viewShared(config.buffers);

type Publish = (seq: number, userId: number) => void;

async function openPublisher(): Promise<{ publish: Publish; close(): Promise<void> }> {
  const timestampNow = () => new Date().toISOString();
  if (config.via === 'socketio') {
    const client = createClient({ url: config.redisUrl });
    client.on('error', () => {});
    await client.connect();
    const emitter = new Emitter(client);
    const prices = emitter.to('prices');
    return {
      publish(seq, userId) {
        if (config.kind === 'price') {
          prices.emit('price', { type: 'price', symbol: 'SOL', price: priceForSeq(seq), timestamp: timestampNow() });
        } else {
          emitter
            .to(`user:${userId}`)
            .emit('order_filled', { type: 'order_filled', ...orderEvent(seq, userId, timestampNow()) });
        }
      },
      close: async () => {
        await client.quit().catch(() => {});
      },
    };
  }
  const symbols = config.symbols ?? ['SOL'];
  const broker = await connectRedisBroker(config.redisUrl);
  const events = createEventPublisher(
    broker,
    config.partitions === undefined ? {} : { layout: partitionedChannelLayout(config.partitions) },
  );
  const onError = (err: unknown) => {
    process.stderr.write(`publisher: ${String(err)}\n`);
  };
  return {
    publish(seq, userId) {
      if (config.kind === 'price')
        events.publishPriceUpdate(symbols[seq % symbols.length]!, priceForSeq(seq)).catch(onError);
      else events.publishOrderFilled(orderEvent(seq, userId, timestampNow())).catch(onError);
    },
    close: () => broker.close(),
  };
}

function orderEvent(seq: number, userId: number, timestamp: string) {
  return {
    userId,
    orderId: seq,
    side: 'buy' as const,
    baseAsset: 'SOL',
    quoteAsset: 'USD',
    executedPrice: '231.45',
    executedSize: '1.5',
    fee: '0.0347175',
    timestamp,
  };
}

const userIds = config.userIds ?? [];
const stopped = () => Atomics.load(control, CTL.stop) === 1;

function publishOne(publish: Publish, seq: number): void {
  const slot = seq % CAPACITY;
  const userId = userIds.length > 0 ? userIds[Math.floor(Math.random() * userIds.length)]! : 0;
  targets[slot] = userId;
  sendTimes[slot] = monoMs();
  publish(seq, userId);
  Atomics.store(control, CTL.published, seq);
}

/** Resolves the wait of the running window-mode run (the receiver posted `wake`). */
let onWake: () => void = () => {};

async function runWindow(publish: Publish, run: PublishRun): Promise<void> {
  const window = run.window ?? 32;
  let seq = run.firstSeq - 1;
  Atomics.store(control, CTL.minReceived, seq);
  const fill = () => {
    const min = Atomics.load(control, CTL.minReceived);
    while (seq - min < window) publishOne(publish, ++seq);
  };
  // The receiver posts a message each time the slowest client moves (or to stop). A message,
  // not Atomics.waitAsync: on Node 20 an async wait in a worker never wakes up.
  await new Promise<void>((resolve) => {
    onWake = () => {
      if (stopped()) {
        onWake = () => {};
        resolve();
      } else fill();
    };
    fill();
  });
}

async function runRate(publish: Publish, run: PublishRun): Promise<void> {
  const rate = run.rate ?? 10;
  const warmup = run.warmupEvents ?? 0;
  const total = warmup + (run.measuredEvents ?? rate * 5);
  const first = run.firstSeq;
  const intervalMs = 1000 / rate;
  const start = monoMs();
  Atomics.store(control, CTL.measureFrom, first + warmup);
  let sent = 0;
  while (sent < total && !stopped()) {
    // Publish every event that is due (catching up after a late timer), then sleep to the next.
    const elapsed = monoMs() - start;
    while (sent < total && sent * intervalMs <= elapsed) publishOne(publish, first + sent++);
    if (sent < total) await sleep(Math.max(0, sent * intervalMs - (monoMs() - start)));
  }
  Atomics.store(control, CTL.measureTo, first + total - 1);
}

const publisher = await openPublisher();
const post = (event: PublisherEvent) => parentPort?.postMessage(event);
parentPort?.on('message', (command: PublisherCommand) => {
  if (command.type === 'wake') onWake();
  else if (command.type === 'run') {
    Atomics.store(control, CTL.stop, 0);
    const running =
      command.run.mode === 'window'
        ? runWindow(publisher.publish, command.run)
        : runRate(publisher.publish, command.run);
    // A short pause lets node-redis flush the last pipelined PUBLISH before `done` is reported.
    void running
      .then(() => sleep(20))
      .then(() => post({ type: 'done', published: Atomics.load(control, CTL.published) }));
  } else if (command.type === 'close') {
    void publisher.close().then(() => {
      post({ type: 'closed' });
      parentPort?.close();
    });
  }
});
post({ type: 'ready' });
