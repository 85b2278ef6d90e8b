import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { EVENT_CHANNELS, connectRedisBroker, type RedisBroker } from '@repo/broker';
import { CLIENT_EVENT_KINDS, EVENT_KINDS, MAX_EVENT_LENGTH, type ClientEventKind } from '@repo/events';
import type { ServerMessage } from '@repo/protocol';
import { startGateway, type GatewayFixture } from './gateway-fixture.ts';
import { RedisServer, waitFor, type TestClient } from '@repo/test-support';

/**
 * A confused publisher on the real Redis channels: wrong shapes, wrong userId types, users
 * nobody here knows, absurd sizes. Whatever fails the schema is dropped and counted; nothing
 * reaches a socket that is not the event's user's.
 */

const KINDS = CLIENT_EVENT_KINDS;
const USERS = [5, 6];
const now = () => new Date().toISOString();
const valid: Record<ClientEventKind, (userId: number) => Record<string, unknown>> = {
  price: () => ({ symbol: 'SOL', price: '231.45', timestamp: now() }),
  order_filled: (userId) => ({
    userId,
    orderId: 1,
    side: 'buy',
    baseAsset: 'SOL',
    quoteAsset: 'USD',
    executedPrice: '1',
    executedSize: '1',
    fee: '0',
    timestamp: now(),
  }),
  order_rejected: (userId) => ({
    userId,
    orderId: 2,
    side: 'sell',
    baseAsset: 'SOL',
    quoteAsset: 'USD',
    requestedSize: '1',
    reason: 'insufficient balance',
    timestamp: now(),
  }),
  portfolio: (userId) => ({
    userId,
    balances: [{ asset: 'USD', available: '1', locked: '0' }],
    positions: [],
    timestamp: now(),
  }),
};
const PRIVATE_TYPES = new Set(['order_filled', 'order_rejected', 'portfolio']);

describe('confused publisher on Redis', () => {
  let redis: RedisServer;
  let publisher: RedisBroker;
  let fx: GatewayFixture;
  const clients = new Map<number, TestClient>();

  before(async () => {
    redis = await RedisServer.start();
    publisher = await connectRedisBroker(redis.url);
    fx = await startGateway({ broker: await connectRedisBroker(redis.url) });
    for (const userId of USERS) {
      const { client } = await fx.connectAs(userId);
      for (const channel of ['prices', 'orders', 'portfolio']) await client.request({ type: 'subscribe', channel });
      clients.set(userId, client);
    }
  });
  after(async () => {
    await fx.close();
    await fx.broker.close();
    await publisher.close();
    await redis.stop();
  });

  const privateReceived = (client: TestClient) =>
    client.received.filter((m) => PRIVATE_TYPES.has(m.type)) as (ServerMessage & { userId: number })[];
  const dropped = () => fx.metric('tradewire_ws_events_dropped_total', { reason: 'malformed' });
  const delivered = () => fx.metric('tradewire_ws_messages_delivered_total');

  /** Publishes, then waits until the gateway has dealt with all of it (a price marker after it arrives). */
  async function publishAndSettle(messages: [string, string][]): Promise<void> {
    for (const [channel, raw] of messages) await publisher.publish(channel, raw);
    const marker = `${Math.floor(Math.random() * 1e9)}.25`;
    await publisher.publish(EVENT_CHANNELS.price, JSON.stringify({ symbol: 'SOL', price: marker, timestamp: now() }));
    for (const client of clients.values())
      await client.waitFor((m) => m.type === 'price' && m.price === marker, 5000, 'marker');
  }

  it('drops wrong userId types and absurd sizes, counts each, and sends unknown users’ events to nobody', async () => {
    const droppedBefore = await dropped();
    const privateBefore = USERS.map((u) => privateReceived(clients.get(u)!).length);
    const big = 'x'.repeat(MAX_EVENT_LENGTH + 1);
    const malformed: [string, string][] = [
      // userId of the wrong type or range: never coerced to 5.
      ...['"5"', '5.5', '-5', '0', '9007199254740993', '[5]', '{"$gt":0}', 'null', 'true', '5e0x'].flatMap((id) =>
        (['order_filled', 'portfolio'] as const).map((kind): [string, string] => [
          EVENT_CHANNELS[kind],
          JSON.stringify(valid[kind](5)).replace('"userId":5', `"userId":${id}`),
        ]),
      ),
      // Absurd sizes: over the raw cap, or under it but past the schema's bounds.
      [EVENT_CHANNELS.price, big],
      [EVENT_CHANNELS.portfolio, JSON.stringify({ ...valid.portfolio(5), pad: big })],
      [EVENT_CHANNELS.price, JSON.stringify({ symbol: 'SOL', price: '9'.repeat(100_000), timestamp: now() })],
      [EVENT_CHANNELS.price, JSON.stringify({ symbol: 'S'.repeat(100_000), price: '1', timestamp: now() })],
      [
        EVENT_CHANNELS.portfolio,
        JSON.stringify({
          ...valid.portfolio(5),
          balances: Array.from({ length: 1000 }, (_, i) => ({ asset: `A${i}`, available: '1', locked: '0' })),
        }),
      ],
      [EVENT_CHANNELS.order_rejected, JSON.stringify({ ...valid.order_rejected(5), reason: 'r'.repeat(100_000) })],
      [EVENT_CHANNELS.order_filled, '['.repeat(200_000)],
      [EVENT_CHANNELS.order_filled, `${'['.repeat(100_000)}${']'.repeat(100_000)}`],
    ];
    const unknownUsers: [string, string][] = [999_999, Number.MAX_SAFE_INTEGER].flatMap((userId) =>
      (['order_filled', 'order_rejected', 'portfolio'] as const).map((kind): [string, string] => [
        EVENT_CHANNELS[kind],
        JSON.stringify(valid[kind](userId)),
      ]),
    );
    const deliveredBefore = await delivered();
    await publishAndSettle([...malformed, ...unknownUsers]);
    assert.equal(await dropped(), droppedBefore + malformed.length);
    USERS.forEach((u, i) =>
      assert.equal(privateReceived(clients.get(u)!).length, privateBefore[i], `user ${u} got nothing private`),
    );
    // Only the marker price (once per socket) was written: events of unknown users reach nobody.
    assert.equal(await delivered(), deliveredBefore + USERS.length);
    // And the gateway is still fine for everyone.
    for (const client of clients.values()) await client.barrier();
  });

  it('property: arbitrary publishes on every channel reach their own user only, the rest are counted', async () => {
    const fieldValue = fc.oneof(fc.jsonValue({ maxDepth: 2 }), fc.constantFrom(5, 6, 7, '5', -1, Infinity, ''));
    const message = fc
      .tuple(
        fc.constantFrom(...KINDS),
        fc.constantFrom(5, 6, 7, 8),
        fc.nat(),
        fc.option(fieldValue, { nil: undefined }),
        fc.boolean(),
      )
      .map(([kind, userId, pick, value, raw]): [ClientEventKind, string] => {
        if (raw) return [kind, JSON.stringify(value ?? null)];
        const event = valid[kind](userId);
        const keys = Object.keys(event);
        // Either untouched, or one field replaced (or removed) by an arbitrary value.
        if (pick % 3 !== 0) {
          const key = keys[pick % keys.length]!;
          if (value === undefined) delete event[key];
          else event[key] = value;
        }
        return [kind, JSON.stringify(event)];
      });
    await fc.assert(
      fc.asyncProperty(fc.array(message, { minLength: 1, maxLength: 20 }), async (batch) => {
        const droppedBefore = await dropped();
        const seenBefore = new Map(USERS.map((u) => [u, privateReceived(clients.get(u)!).length]));
        await publishAndSettle(batch.map(([kind, raw]) => [EVENT_CHANNELS[kind], raw]));
        const invalid = batch.filter(
          ([kind, raw]) => !EVENT_KINDS[kind].schema.safeParse(JSON.parse(raw)).success,
        ).length;
        assert.equal(await dropped(), droppedBefore + invalid);
        for (const userId of USERS) {
          const fresh = privateReceived(clients.get(userId)!).slice(seenBefore.get(userId));
          for (const m of fresh) assert.equal(m.userId, userId, `user ${userId} got ${JSON.stringify(m)}`);
          const expected = batch.filter(
            ([kind, raw]) =>
              kind !== 'price' &&
              EVENT_KINDS[kind].schema.safeParse(JSON.parse(raw)).success &&
              (JSON.parse(raw) as { userId: number }).userId === userId,
          ).length;
          assert.equal(fresh.length, expected, `user ${userId}: own valid events`);
        }
      }),
      { numRuns: 60, endOnFailure: true },
    );
    await waitFor(async () => (await fx.metric('tradewire_ws_connections')) === 2);
  });
});
