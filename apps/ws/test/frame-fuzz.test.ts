import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import fc from 'fast-check';
import { createEventPublisher } from '@repo/broker';
import { CHANNELS } from '@repo/protocol';
import { startGateway, type GatewayFixture } from './gateway-fixture.ts';

/**
 * Thousands of generated client frames against a live gateway. Each frame's answer is predicted
 * from docs/protocol.md alone (the oracle below never calls the gateway's parser), a
 * well-behaved client on the same gateway must get every price tick on time throughout, and
 * the gateway's heap must come back to where it was.
 */

const MAX_PAYLOAD = 16 * 1024;
const utf8 = new TextDecoder('utf-8', { fatal: true });

type Frame = { data: Buffer; binary: boolean; kind: string };
/** What the protocol promises for one frame: a close code, or exactly one reply. */
type Expectation = { close: number } | { reply: { type: string; code?: string; id?: string | number } };

function expectationFor(frame: Frame): Expectation {
  if (frame.data.length > MAX_PAYLOAD) return { close: 1009 };
  if (frame.binary) return { reply: { type: 'error', code: 'invalid_message' } };
  let text: string;
  try {
    text = utf8.decode(frame.data);
  } catch {
    return { close: 1007 };
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { reply: { type: 'error', code: 'invalid_json' } };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    return { reply: { type: 'error', code: 'invalid_message' } };
  const own = (key: string) => (Object.hasOwn(value, key) ? (value as Record<string, unknown>)[key] : undefined);
  const rawId = own('id');
  const idOk =
    rawId === undefined ||
    (typeof rawId === 'string' && rawId.length <= 128) ||
    (typeof rawId === 'number' && Number.isFinite(rawId));
  if (!idOk) return { reply: { type: 'error', code: 'invalid_message' } };
  const id = rawId;
  const answer = (type: string, code?: string) => ({
    reply: { type, ...(code ? { code } : {}), ...(id === undefined ? {} : { id }) },
  });
  const type = own('type');
  switch (type) {
    case 'ping':
      return answer('pong');
    case 'auth': {
      const token = own('token');
      // The fuzzing socket knows no valid token: a well-formed auth fails.
      return typeof token === 'string' && token.length > 0 && token.length <= 4096
        ? answer('error', 'auth_failed')
        : answer('error', 'invalid_message');
    }
    case 'subscribe':
    case 'unsubscribe': {
      const channel = own('channel');
      if (typeof channel !== 'string') return answer('error', 'invalid_message');
      if (!(CHANNELS as readonly string[]).includes(channel)) return answer('error', 'unknown_channel');
      if (type === 'unsubscribe') return answer('unsubscribed');
      const since = own('since');
      if (since !== undefined && !(typeof since === 'number' && Number.isSafeInteger(since) && since >= 0))
        return answer('error', 'invalid_message');
      return channel === 'prices' ? answer('subscribed') : answer('error', 'auth_required');
    }
    default:
      return answer('error', 'invalid_message');
  }
}

// ---- generators ------------------------------------------------------------------------------

const text =
  (kind: string) =>
  (s: string): Frame => ({ data: Buffer.from(s, 'utf8'), binary: false, kind });
const nastyKey = fc.constantFrom(
  '__proto__',
  'constructor',
  'prototype',
  'toString',
  'hasOwnProperty',
  'valueOf',
  'type',
  'id',
  '',
);
const anyJson = fc.jsonValue({ maxDepth: 3 });
const wrongValue = fc.oneof(
  anyJson,
  fc.constantFrom('', 'x'.repeat(5000), -1, 1.5, 2 ** 53, 1e308, null, true, [], {}),
  fc.string({ maxLength: 20 }),
);
const validMessage = fc.oneof(
  fc.record(
    { type: fc.constant('ping'), id: fc.oneof(fc.string({ maxLength: 12 }), fc.integer()) },
    { requiredKeys: ['type'] },
  ),
  fc.record(
    { type: fc.constant('auth'), token: fc.string({ minLength: 1, maxLength: 64 }), id: fc.integer() },
    { requiredKeys: ['type', 'token'] },
  ),
  fc.record(
    {
      type: fc.constantFrom('subscribe', 'unsubscribe'),
      channel: fc.constantFrom(...CHANNELS),
      id: fc.string({ maxLength: 8 }),
      since: fc.nat(),
    },
    { requiredKeys: ['type', 'channel'] },
  ),
);
/** A valid request with one field replaced by a wrong value, deleted, or shadowed by a nasty key. */
const corrupted = fc
  .tuple(validMessage, fc.nat(), fc.oneof(fc.constant('delete' as const), fc.constant('replace' as const)), wrongValue)
  .map(([message, pick, how, value]) => {
    const copy: Record<string, unknown> = { ...message };
    const keys = Object.keys(copy);
    const key = keys[pick % keys.length]!;
    if (how === 'delete') delete copy[key];
    else copy[key] = value;
    return JSON.stringify(copy);
  });
const protoKeys = fc.tuple(validMessage, nastyKey, anyJson).map(([message, key, value]) => {
  const json = JSON.stringify(message);
  // Raw text, so "__proto__" arrives as an own key rather than being eaten by an object literal.
  return `{${JSON.stringify(key)}:${JSON.stringify(value)},${json.slice(1)}`;
});
const deepNesting = fc
  .tuple(fc.integer({ min: 100, max: 8000 }), fc.constantFrom('[', '{"a":'), fc.boolean())
  .map(([depth, open, closed]) => {
    const close = open === '[' ? ']' : '}';
    return open.repeat(depth) + '1' + (closed ? close.repeat(depth) : '');
  })
  .filter((s) => Buffer.byteLength(s) <= MAX_PAYLOAD);
const hugeValues = fc.oneof(
  fc.constantFrom(
    '1e999',
    '-1e999',
    '9'.repeat(5000),
    '{"type":"ping","id":1e999}',
    '{"type":"ping","id":123456789012345678901234567890}',
  ),
  fc.integer({ min: 129, max: 15_000 }).map((n) => JSON.stringify({ type: 'ping', id: 'i'.repeat(n) })),
  fc.integer({ min: 4000, max: 15_000 }).map((n) => JSON.stringify({ type: 'auth', token: 't'.repeat(n) })),
  fc.integer({ min: 1, max: 15_000 }).map((n) => JSON.stringify({ type: 'subscribe', channel: 'c'.repeat(n) })),
);

const frameArb: fc.Arbitrary<Frame> = fc.oneof(
  { weight: 6, arbitrary: corrupted.map(text('corrupted')) },
  { weight: 3, arbitrary: validMessage.map((m) => text('valid')(JSON.stringify(m))) },
  { weight: 3, arbitrary: protoKeys.map(text('proto-keys')) },
  { weight: 2, arbitrary: anyJson.map((v) => text('json')(JSON.stringify(v))) },
  {
    weight: 2,
    arbitrary: fc
      .dictionary(fc.oneof(nastyKey, fc.string({ maxLength: 6 })), wrongValue, { maxKeys: 5 })
      .map((d) => text('unknown-fields')(JSON.stringify(d))),
  },
  { weight: 2, arbitrary: fc.string({ maxLength: 200 }).map(text('string')) },
  { weight: 2, arbitrary: hugeValues.map(text('huge')) },
  { weight: 1, arbitrary: deepNesting.map(text('deep')) },
  // Random bytes sent as a text frame: mostly invalid UTF-8 (close 1007), sometimes valid.
  {
    weight: 1,
    arbitrary: fc.uint8Array({ maxLength: 64 }).map((b) => ({ data: Buffer.from(b), binary: false, kind: 'bytes' })),
  },
  {
    weight: 1,
    arbitrary: fc.uint8Array({ maxLength: 256 }).map((b) => ({ data: Buffer.from(b), binary: true, kind: 'binary' })),
  },
  {
    weight: 1,
    arbitrary: fc
      .constantFrom(
        Buffer.from([0xc3, 0x28]),
        Buffer.from([0xed, 0xa0, 0x80]),
        Buffer.from('{"type":"ping"\xff}', 'latin1'),
      )
      .map((data) => ({ data, binary: false, kind: 'bad-utf8' })),
  },
  {
    weight: 1,
    arbitrary: fc
      .integer({ min: MAX_PAYLOAD + 1, max: MAX_PAYLOAD * 4 })
      .map((n) => text('oversize')(JSON.stringify({ type: 'ping', pad: 'x'.repeat(n) }))),
  },
);

// ---- the test --------------------------------------------------------------------------------

function collectGarbage(): void {
  setFlagsFromString('--expose-gc');
  (runInNewContext('gc') as () => void)();
}

describe('client frame fuzz', () => {
  let fx: GatewayFixture;

  before(async () => {
    // The rate limit has its own tests; here it would only slow the fuzzer down.
    fx = await startGateway({ limits: { messagesPerWindow: 1_000_000, floodCloseAfter: 1_000_000 } });
  });
  after(() => fx.close());

  it('answers every generated frame as documented, never crashes or grows, keeps prices flowing', async () => {
    const publisher = createEventPublisher(fx.broker);
    const watcher = await fx.connect();
    assert.equal((await watcher.request({ type: 'subscribe', channel: 'prices' })).type, 'subscribed');

    // Price ticks every 20 ms; the watcher records each one's delay from publish to arrival.
    const publishedAt = new Map<string, number>();
    const delays: number[] = [];
    let seen = 0;
    watcher.ws.on('message', (data: Buffer) => {
      const message = JSON.parse(data.toString()) as { type: string; price?: string };
      if (message.type !== 'price' || !publishedAt.has(message.price!)) return;
      delays.push(Date.now() - publishedAt.get(message.price!)!);
      seen += 1;
    });
    let tick = 0;
    const ticker = setInterval(() => {
      tick += 1;
      const price = `${100 + tick}.5`;
      publishedAt.set(price, Date.now());
      void publisher.publishPriceUpdate('SOL', price);
    }, 20);

    collectGarbage();
    const heapBefore = process.memoryUsage().heapUsed;
    const counts = new Map<string, number>();
    let fuzzer = await fx.connect();
    let frames = 0;

    try {
      await fc.assert(
        fc.asyncProperty(fc.array(frameArb, { minLength: 1, maxLength: 30, size: 'max' }), async (batch) => {
          // Replying frames are pipelined and checked in order after a ping barrier; a frame that
          // must close the socket is sent alone on the socket, which is then replaced.
          let pending: { frame: Frame; expected: Expectation & { reply: object } }[] = [];
          const flush = async () => {
            if (pending.length === 0) return;
            const start = fuzzer.received.length;
            await fuzzer.barrier(10_000);
            const replies = fuzzer.received.slice(start).filter((m) => m.type !== 'price');
            const barrier = replies.pop();
            assert.equal(barrier?.type, 'pong');
            assert.equal(replies.length, pending.length, `one reply per frame: ${JSON.stringify(replies.slice(0, 3))}`);
            replies.forEach((reply, i) => {
              const { frame, expected } = pending[i]!;
              const got: Record<string, unknown> = { type: reply.type };
              if ('code' in reply) got.code = reply.code;
              if ('id' in reply) got.id = reply.id;
              assert.deepEqual(got, expected.reply, `${frame.kind} frame ${frame.data.toString('utf8').slice(0, 120)}`);
            });
            pending = [];
          };
          for (const frame of batch) {
            frames += 1;
            counts.set(frame.kind, (counts.get(frame.kind) ?? 0) + 1);
            const expected = expectationFor(frame);
            if ('close' in expected) {
              await flush();
              fuzzer.ws.send(frame.data, { binary: frame.binary });
              const closed = await Promise.race([
                fuzzer.closed,
                new Promise<never>((_, reject) =>
                  setTimeout(() => reject(new Error(`no close for ${frame.kind}`)), 5000),
                ),
              ]);
              assert.equal(closed.code, expected.close, `${frame.kind} frame`);
              fuzzer = await fx.connect();
              continue;
            }
            fuzzer.ws.send(frame.data, { binary: frame.binary });
            pending.push({ frame, expected });
          }
          await flush();
          // Keep the recorder from growing with the run.
          fuzzer.received.length = 0;
          fuzzer.skipReceived();
        }),
        { numRuns: 300, endOnFailure: true },
      );
    } finally {
      clearInterval(ticker);
    }
    await fuzzer.close();
    await watcher.barrier();

    assert.ok(frames >= 2000, `only ${frames} frames`);
    for (const kind of ['corrupted', 'proto-keys', 'huge', 'deep', 'bytes', 'binary', 'bad-utf8', 'oversize']) {
      assert.ok((counts.get(kind) ?? 0) > 0, `no ${kind} frames generated`);
    }
    // Every tick reached the well-behaved client, promptly.
    assert.equal(seen, tick, 'every price tick delivered');
    const sorted = [...delays].sort((a, b) => a - b);
    const p99 = sorted[Math.floor(sorted.length * 0.99)]!;
    const max = sorted.at(-1)!;
    // Generous: the suite runs two files at once on two cores; a gateway that stalled on the
    // fuzzer would hold ticks for seconds, which this still catches.
    assert.ok(p99 <= 500 && max <= 2000, `price delay p99 ${p99} ms, max ${max} ms`);

    collectGarbage();
    const growth = process.memoryUsage().heapUsed - heapBefore;
    assert.ok(growth < 20 * 1024 * 1024, `heap grew by ${(growth / 1048576).toFixed(1)} MiB`);
    assert.equal(fx.gateway.connectionCount(), 1);
    console.log(
      `frame fuzz: ${frames} frames ${JSON.stringify(Object.fromEntries(counts))}; ` +
        `ticks ${tick}, delay p99 ${p99} ms max ${max} ms; heap growth ${(growth / 1048576).toFixed(1)} MiB`,
    );
    await watcher.close();
  });
});
