import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { createEventPublisher, type EventPublisher } from '@repo/broker';
import { redisKeys } from '@repo/redis';
import { startGateway, type GatewayFixture } from './gateway-fixture.ts';
import { TestClient } from '@repo/test-support';

const SLOTS = 5;
const USERS = 2;
type PrivateChannel = 'orders' | 'portfolio';

type Op =
  | { op: 'open'; slot: number; user: number | null; sess: number; channels: ('orders' | 'portfolio' | 'prices')[] }
  | { op: 'subscribe' | 'unsubscribe'; slot: number; channel: PrivateChannel | 'prices' }
  | { op: 'close'; slot: number }
  | { op: 'order'; user: number; rejected: boolean }
  | { op: 'portfolio'; user: number }
  | { op: 'revoke'; user: number; sess: number };

const slot = fc.integer({ min: 0, max: SLOTS - 1 });
const user = fc.integer({ min: 1, max: USERS });
const sess = fc.integer({ min: 0, max: 1 });
const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 3,
    arbitrary: fc.record({
      op: fc.constant('open' as const),
      slot,
      user: fc.option(user, { freq: 5 }),
      sess,
      channels: fc.subarray(['orders', 'portfolio', 'prices'] as ('orders' | 'portfolio' | 'prices')[]),
    }),
  },
  {
    weight: 4,
    arbitrary: fc.record({
      op: fc.constant('subscribe' as const),
      slot,
      channel: fc.constantFrom('orders', 'portfolio', 'prices'),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      op: fc.constant('unsubscribe' as const),
      slot,
      channel: fc.constantFrom('orders', 'portfolio', 'prices'),
    }),
  },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('close' as const), slot }) },
  { weight: 5, arbitrary: fc.record({ op: fc.constant('order' as const), user, rejected: fc.boolean() }) },
  { weight: 3, arbitrary: fc.record({ op: fc.constant('portfolio' as const), user }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('revoke' as const), user, sess }) },
);

interface SlotModel {
  client: TestClient;
  userId: number | null;
  sessionId: string | null;
  subs: Set<string>;
  /** Private event keys this socket must receive, in order: `o<orderId>` / `p<version>`. */
  expected: string[];
}

function privateKeys(client: TestClient): string[] {
  return client.received.flatMap((m) =>
    m.type === 'order_filled' || m.type === 'order_rejected'
      ? [`o${m.orderId}`]
      : m.type === 'portfolio'
        ? [`p${m.version}`]
        : [],
  );
}

describe('isolation property', () => {
  let fx: GatewayFixture;
  let publisher: EventPublisher;
  let run = 0;
  let nextOrderId = 0;
  let nextVersion = 0;

  before(async () => {
    fx = await startGateway();
    publisher = createEventPublisher(fx.broker);
  });
  after(() => fx.close());

  it("no socket gets another user's event; each subscribed socket gets each own event once, in order", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(opArb, { minLength: 5, maxLength: 35 }), async (ops) => {
        run += 1;
        // Users are fresh per run so earlier runs' sockets can never interfere.
        const userId = (u: number) => run * 100 + u;
        const generation = new Map<string, number>();
        const slots: (SlotModel | null)[] = Array.from({ length: SLOTS }, () => null);
        const retired: SlotModel[] = [];
        try {
          for (const op of ops) {
            switch (op.op) {
              case 'open': {
                const existing = slots[op.slot];
                if (existing) break;
                const client = await fx.connect();
                const model: SlotModel = { client, userId: null, sessionId: null, subs: new Set(), expected: [] };
                if (op.user !== null) {
                  const key = `${op.user}-${op.sess}`;
                  const token = `run${run}-u${op.user}-s${op.sess}-g${generation.get(key) ?? 0}`;
                  const session = fx.sessions.tokens.get(token) ?? fx.sessions.add(token, userId(op.user));
                  const reply = await client.request({ type: 'auth', token });
                  assert.equal(reply.type, 'auth_ok');
                  model.userId = session.userId;
                  model.sessionId = session.sessionId;
                }
                slots[op.slot] = model;
                for (const channel of op.channels) {
                  const reply = await client.request({ type: 'subscribe', channel });
                  if (channel === 'prices' || model.userId !== null) model.subs.add(channel);
                  else assert.equal(reply.type === 'error' && reply.code, 'auth_required');
                }
                break;
              }
              case 'subscribe': {
                const model = slots[op.slot];
                if (!model) break;
                const reply = await model.client.request({ type: 'subscribe', channel: op.channel });
                if (op.channel !== 'prices' && model.userId === null) {
                  assert.equal(reply.type === 'error' && reply.code, 'auth_required');
                } else {
                  assert.equal(reply.type, 'subscribed');
                  model.subs.add(op.channel);
                }
                break;
              }
              case 'unsubscribe': {
                const model = slots[op.slot];
                if (!model) break;
                assert.equal(
                  (await model.client.request({ type: 'unsubscribe', channel: op.channel })).type,
                  'unsubscribed',
                );
                model.subs.delete(op.channel);
                break;
              }
              case 'close': {
                const model = slots[op.slot];
                if (!model) break;
                await model.client.close();
                retired.push(model);
                slots[op.slot] = null;
                break;
              }
              case 'order': {
                const orderId = (nextOrderId += 1);
                const base = {
                  userId: userId(op.user),
                  orderId,
                  side: 'buy' as const,
                  baseAsset: 'SOL',
                  quoteAsset: 'USD',
                };
                if (op.rejected)
                  await publisher.publishOrderRejected({ ...base, requestedSize: '1', reason: 'no funds' });
                else await publisher.publishOrderFilled({ ...base, executedPrice: '1', executedSize: '1', fee: '0' });
                for (const model of slots) {
                  if (model && model.userId === userId(op.user) && model.subs.has('orders'))
                    model.expected.push(`o${orderId}`);
                }
                break;
              }
              case 'portfolio': {
                const version = (nextVersion += 1);
                const event = {
                  userId: userId(op.user),
                  balances: [],
                  positions: [],
                  timestamp: new Date().toISOString(),
                  version,
                };
                // Published raw (no latest-value write) so subscribing sends no snapshot to account for.
                await fx.broker.publish(redisKeys.CHANNELS.portfolioUpdate(), JSON.stringify(event));
                for (const model of slots) {
                  if (model && model.userId === userId(op.user) && model.subs.has('portfolio'))
                    model.expected.push(`p${version}`);
                }
                break;
              }
              case 'revoke': {
                const key = `${op.user}-${op.sess}`;
                const gen = generation.get(key) ?? 0;
                const sessionId = `s-run${run}-u${op.user}-s${op.sess}-g${gen}`;
                generation.set(key, gen + 1);
                await fx.broker.publish(redisKeys.CHANNELS.sessionRevoked(), JSON.stringify({ sessionId }));
                for (const model of slots) {
                  if (model && model.sessionId === sessionId) {
                    model.userId = null;
                    model.sessionId = null;
                    model.subs.delete('orders');
                    model.subs.delete('portfolio');
                  }
                }
                break;
              }
            }
          }
          const open = slots.filter((m): m is SlotModel => m !== null);
          await Promise.all(open.map((m) => m.client.barrier()));
          for (const model of [...retired, ...open]) {
            assert.deepEqual(privateKeys(model.client), model.expected);
          }
        } finally {
          for (const model of slots) model?.client.ws.terminate();
        }
      }),
      { numRuns: 60 },
    );
  });
});
