import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { MemoryBroker, type Broker } from '@repo/broker';
import { redisKeys } from '@repo/redis';
import type { TestClient } from '@repo/test-support';
import { startGateway, type GatewayFixture } from './gateway-fixture.ts';

/**
 * Random sockets subscribe, resubscribe, unsubscribe and close, each with a random set of
 * symbols, while a ticker publishes ticks of every symbol throughout. Every socket must get
 * exactly the ticks of the symbols it asked for:
 * - never a tick of a symbol outside the set the latest `subscribed` before it acknowledged
 *   (snapshot included), nor any after `unsubscribed`;
 * - once it has its `subscribed`, the newest price of each of its symbols (snapshot or live),
 *   then every tick of them published until it sends its next request;
 * - no tick twice under one acknowledgement, and no repeat of a tick of a symbol that stayed
 *   live across a resubscription.
 * The gateway's soft buffer limit is far above what the test sends, so no tick is conflated.
 */

const SYMBOLS = ['SOL', 'BTC', 'ETH', 'XRP'];
const SLOTS = 4;
const BASE_MS = Date.UTC(2026, 0, 1);

type Wanted = string[] | null;
type Op =
  | { op: 'subscribe'; slot: number; symbols: Wanted }
  | { op: 'unknown'; slot: number; symbols: string[] }
  | { op: 'unsubscribe'; slot: number }
  | { op: 'close'; slot: number }
  | { op: 'flow'; ticks: number };

const slot = fc.integer({ min: 0, max: SLOTS - 1 });
// Duplicates and any order: the gateway deduplicates.
const wanted: fc.Arbitrary<Wanted> = fc.option(fc.array(fc.constantFrom(...SYMBOLS), { minLength: 1, maxLength: 6 }));
const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ op: fc.constant('subscribe' as const), slot, symbols: wanted }) },
  {
    weight: 1,
    arbitrary: fc.record({
      op: fc.constant('unknown' as const),
      slot,
      symbols: fc.subarray(SYMBOLS).map((known) => [...known, 'DOGE']),
    }),
  },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('unsubscribe' as const), slot }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('close' as const), slot }) },
  { weight: 3, arbitrary: fc.record({ op: fc.constant('flow' as const), ticks: fc.integer({ min: 1, max: 12 }) }) },
);

/**
 * The in-process broker, with latest-value reads that answer a timer later, as Redis's answer
 * a round trip later: ticks then arrive while a snapshot is read, and are held meanwhile.
 */
class RoundTripReadBroker extends MemoryBroker {
  override async getLatestMany(keys: readonly string[]): Promise<(string | null)[]> {
    await new Promise((resolve) => setTimeout(resolve, 1));
    return super.getLatestMany(keys);
  }
}

/** Publishes ticks round-robin over every symbol until stopped; each tick's price is its unique id. */
class Ticker {
  /** Every tick published, in order: its index is its position in time. */
  readonly published: { id: number; symbol: string }[] = [];
  readonly #broker: Broker;
  #nextId: number;
  #running = true;
  readonly #done: Promise<void>;
  #waiters: { count: number; resolve: () => void }[] = [];

  constructor(broker: Broker, firstId: number) {
    this.#broker = broker;
    this.#nextId = firstId;
    this.#done = this.#loop();
  }

  get nextId(): number {
    return this.#nextId;
  }

  /** Resolves once `count` more ticks were published. */
  more(count: number): Promise<void> {
    const target = this.published.length + count;
    return new Promise((resolve) => this.#waiters.push({ count: target, resolve }));
  }

  stop(): Promise<void> {
    this.#running = false;
    return this.#done;
  }

  async #loop(): Promise<void> {
    while (this.#running) {
      const id = (this.#nextId += 1);
      const symbol = SYMBOLS[id % SYMBOLS.length]!;
      // Recorded before it is published: a tick counted after an observation went out after it.
      this.published.push({ id, symbol });
      await this.#broker.publish(
        redisKeys.CHANNELS.priceUpdate(),
        JSON.stringify({ symbol, price: String(id), timestamp: new Date(BASE_MS + id).toISOString() }),
      );
      this.#waiters = this.#waiters.filter((waiter) => {
        if (this.published.length < waiter.count) return true;
        waiter.resolve();
        return false;
      });
      // A timer, not a microtask loop: the sockets and requests get the event loop in between.
      await new Promise((resolve) => setTimeout(resolve, 0));
    }
    for (const waiter of this.#waiters.splice(0)) waiter.resolve();
  }
}

/** A span of the ticker's ticks during which a socket had a settled set (null: every symbol). */
interface Window {
  set: ReadonlySet<string> | null;
  from: number;
  to: number | undefined;
}

interface SlotModel {
  client: TestClient;
  /** The set acknowledged last; undefined when not subscribed to `prices`. */
  set: ReadonlySet<string> | null | undefined;
  windows: Window[];
}

const covers = (set: ReadonlySet<string> | null, symbol: string) => set === null || set.has(symbol);

/** The id of the last tick of `symbol` among the first `count` published. */
function newestBefore(ticker: Ticker, count: number, symbol: string): number | undefined {
  for (let i = count - 1; i >= 0; i -= 1) if (ticker.published[i]!.symbol === symbol) return ticker.published[i]!.id;
  return undefined;
}

/** Checks one socket's received messages against what it asked for (see the module comment). */
function checkSocket(model: SlotModel, ticker: Ticker, label: string): void {
  // Safety, walking the messages in arrival order.
  const describeSet = (set: ReadonlySet<string> | null | undefined) =>
    set === undefined ? 'nothing' : set === null ? 'every symbol' : [...set].join(',');
  let acknowledged: ReadonlySet<string> | null | undefined;
  /** The set before the latest `subscribed`: its symbols were live and must not be repeated. */
  let previous: ReadonlySet<string> | null | undefined;
  let seenUnderAck = new Set<string>();
  const received = new Set<string>();
  for (const message of model.client.received) {
    if (message.type === 'subscribed' && message.channel === 'prices') {
      previous = acknowledged;
      acknowledged = message.symbols === undefined ? null : new Set(message.symbols);
      seenUnderAck = new Set();
    } else if (message.type === 'unsubscribed' && message.channel === 'prices') {
      acknowledged = undefined;
    } else if (message.type === 'price') {
      const tick = `${message.symbol} ${message.price}`;
      assert.ok(
        acknowledged !== undefined && covers(acknowledged, message.symbol),
        `${label}: got ${tick} while subscribed to ${describeSet(acknowledged)}`,
      );
      assert.ok(!seenUnderAck.has(message.price), `${label}: ${tick} twice`);
      const kept = previous !== undefined && covers(previous, message.symbol);
      assert.ok(!(kept && received.has(message.price)), `${label}: ${tick} repeated though its symbol stayed live`);
      seenUnderAck.add(message.price);
      received.add(message.price);
    }
  }
  // Liveness: once its set settled the socket has the newest price of each of its symbols (from
  // the snapshot, or live), then every tick of them published until its next request.
  for (const window of model.windows) {
    for (const symbol of SYMBOLS) {
      if (!covers(window.set, symbol)) continue;
      const newest = newestBefore(ticker, window.from, symbol);
      if (newest !== undefined)
        assert.ok(received.has(String(newest)), `${label}: lacks the newest ${symbol}, ${newest}`);
    }
    const to = window.to ?? ticker.published.length;
    for (const tick of ticker.published.slice(window.from, to)) {
      if (!covers(window.set, tick.symbol)) continue;
      assert.ok(received.has(String(tick.id)), `${label}: missed ${tick.symbol} tick ${tick.id}`);
    }
  }
}

describe('prices by symbol, property', () => {
  let fx: GatewayFixture;
  const broker = new RoundTripReadBroker();
  let nextTickId = 0;

  before(async () => {
    fx = await startGateway({
      broker,
      symbols: SYMBOLS,
      // Far above what a run sends: conflation never applies, so every tick must arrive.
      limits: { softBufferedBytes: 32 * 1024 * 1024, hardBufferedBytes: 64 * 1024 * 1024 },
    });
  });
  after(async () => {
    await fx.close();
    await broker.close();
  });

  it('a socket gets exactly the ticks of the symbols it asked for, across resubscriptions', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(opArb, { minLength: 3, maxLength: 25 }), async (ops) => {
        const ticker = new Ticker(fx.broker, nextTickId);
        const slots: (SlotModel | null)[] = Array.from({ length: SLOTS }, () => null);
        const retired: SlotModel[] = [];
        const now = () => ticker.published.length;
        /** Sends a request on `model`'s socket: its settled window ends when the request goes out. */
        const request = (model: SlotModel, message: Record<string, unknown>) => {
          const current = model.windows.at(-1);
          if (current && current.to === undefined) current.to = now();
          return model.client.request(message, 10_000);
        };
        const settle = (model: SlotModel) => {
          if (model.set !== undefined) model.windows.push({ set: model.set, from: now(), to: undefined });
        };
        try {
          for (const op of ops) {
            if (op.op === 'flow') {
              await ticker.more(op.ticks);
              continue;
            }
            let model = slots[op.slot];
            if (op.op === 'close') {
              if (!model) continue;
              const current = model.windows.at(-1);
              if (current && current.to === undefined) current.to = now();
              await model.client.close();
              retired.push(model);
              slots[op.slot] = null;
              continue;
            }
            if (!model) {
              model = { client: await fx.connect(), set: undefined, windows: [] };
              slots[op.slot] = model;
            }
            if (op.op === 'unsubscribe') {
              const reply = await request(model, { type: 'unsubscribe', channel: 'prices' });
              assert.equal(reply.type, 'unsubscribed');
              model.set = undefined;
            } else if (op.op === 'unknown') {
              const reply = await request(model, { type: 'subscribe', channel: 'prices', symbols: op.symbols });
              assert.equal(reply.type === 'error' && reply.code, 'unknown_symbol');
            } else {
              const message =
                op.symbols === null
                  ? { type: 'subscribe', channel: 'prices' }
                  : { type: 'subscribe', channel: 'prices', symbols: op.symbols };
              const reply = await request(model, message);
              const expected = op.symbols === null ? undefined : [...new Set(op.symbols)];
              assert.deepEqual(reply.type === 'subscribed' && reply.symbols, expected);
              model.set = expected === undefined ? null : new Set(expected);
            }
            settle(model);
          }
          await ticker.stop();
          const open = slots.filter((m): m is SlotModel => m !== null);
          // Every tick was routed when its publish resolved; a pong comes after what was written before it.
          await Promise.all(open.map((m) => m.client.barrier(10_000)));
          for (const [i, model] of [...retired, ...open].entries()) checkSocket(model, ticker, `socket ${i}`);
        } finally {
          await ticker.stop();
          nextTickId = ticker.nextId;
          for (const model of slots) model?.client.ws.terminate();
        }
      }),
      { numRuns: 40 },
    );
  });
});
