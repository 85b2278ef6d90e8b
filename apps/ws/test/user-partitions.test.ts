import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  DESIGN_CHANNEL_LAYOUT,
  MemoryBroker,
  createEventPublisher,
  partitionedChannelLayout,
  type EventPublisher,
} from '@repo/broker';
import { UserPartitions, type PrivateRoutes } from '../src/user-partitions.ts';

/** Routes that record the user of every private event they get. */
function recordingRoutes() {
  const users: number[] = [];
  const record = (raw: string) => users.push((JSON.parse(raw) as { userId: number }).userId);
  const routes: PrivateRoutes = {
    order_filled: record,
    order_rejected: record,
    portfolio: record,
    session_revoked: record,
  };
  return { users, routes };
}

function fillFor(userId: number) {
  return {
    userId,
    orderId: userId,
    side: 'buy' as const,
    baseAsset: 'SOL',
    quoteAsset: 'USD',
    executedPrice: '1',
    executedSize: '1',
    fee: '0',
  };
}

/**
 * Publishes a fill for each user and returns once the in-process broker has delivered them: it
 * delivers on a microtask, and every microtask queued now has run before the next macrotask.
 */
async function publishFills(publisher: EventPublisher, userIds: number[]): Promise<void> {
  for (const userId of userIds) await publisher.publishOrderFilled(fillFor(userId));
  await new Promise((resolve) => setImmediate(resolve));
}

describe('UserPartitions', () => {
  it('design layout: the design channels at start, for every user, holding costs nothing', async () => {
    const broker = new MemoryBroker();
    const { users, routes } = recordingRoutes();
    const partitions = await UserPartitions.start(broker, DESIGN_CHANNEL_LAYOUT, routes);
    assert.deepEqual(partitions.subscribed(), [0]);
    assert.equal(await partitions.hold(7), false);
    partitions.release(7);
    await publishFills(createEventPublisher(broker), [7, 8]);
    assert.deepEqual(users, [7, 8]);
    await partitions.close();
  });

  it('partitioned: subscribes a partition while it holds users of it, and only then', async () => {
    const broker = new MemoryBroker();
    const layout = partitionedChannelLayout(4);
    const publisher = createEventPublisher(broker, { layout });
    const { users, routes } = recordingRoutes();
    const partitions = await UserPartitions.start(broker, layout, routes);
    assert.deepEqual(partitions.subscribed(), []);

    assert.equal(await partitions.hold(5), true, 'first holder of partition 1');
    assert.equal(await partitions.hold(9), false, 'partition 1 is already subscribed');
    assert.deepEqual(partitions.subscribed(), [1]);
    await publishFills(publisher, [5, 6, 9, 13]);
    // 13 is in partition 1 too: the gateway gets it (and will find no socket for it).
    assert.deepEqual(users, [5, 9, 13]);

    partitions.release(5);
    await partitions.settled();
    assert.deepEqual(partitions.subscribed(), [1], 'user 9 still holds partition 1');
    partitions.release(9);
    await partitions.settled();
    assert.deepEqual(partitions.subscribed(), []);
    await publishFills(publisher, [5, 9]);
    assert.deepEqual(users, [5, 9, 13], 'nothing after the last holder left');
    await partitions.close();
  });

  it('partitioned: a partition subscribed by another user while this token was checked: check again', async () => {
    // Socket C's token is checked (mark taken), meanwhile socket A of another user of the same
    // partition brings its subscription: a revocation of C's session published before that
    // never reached this gateway, so C's hold must say so although the partition is live.
    const broker = new MemoryBroker();
    const layout = partitionedChannelLayout(4);
    const { routes } = recordingRoutes();
    const partitions = await UserPartitions.start(broker, layout, routes);
    const beforeC = partitions.mark();
    assert.equal(await partitions.hold(5), true, 'A subscribes partition 1');
    assert.equal(await partitions.hold(9, beforeC), true, 'C: subscribed after its mark');
    const beforeD = partitions.mark();
    assert.equal(await partitions.hold(13, beforeD), false, 'D: live all along since its mark');
    for (const user of [5, 9, 13]) partitions.release(user);
    await partitions.settled();
    assert.equal(await partitions.hold(5, beforeD), true, 'unsubscribed and subscribed again since');
    await partitions.close();
  });

  it('holds, releases and holds again without waiting: one subscription, no event twice', async () => {
    const broker = new MemoryBroker();
    const layout = partitionedChannelLayout(4);
    const { users, routes } = recordingRoutes();
    const partitions = await UserPartitions.start(broker, layout, routes);
    const first = partitions.hold(2);
    partitions.release(2);
    const second = partitions.hold(6);
    partitions.release(99); // a user never held: ignored
    await Promise.all([first, second]);
    await partitions.settled();
    assert.deepEqual(partitions.subscribed(), [2]);
    await publishFills(createEventPublisher(broker, { layout }), [6]);
    assert.deepEqual(users, [6]);
    await partitions.close();
  });

  it('rejects a hold the broker cannot subscribe, holds nothing, and subscribes on a later hold', async () => {
    let failures = 1;
    class FlakyBroker extends MemoryBroker {
      override subscribe(...args: Parameters<MemoryBroker['subscribe']>) {
        if (failures > 0 && args[0].endsWith('portfolio:update:{3}')) {
          failures -= 1;
          return Promise.reject(Object.assign(new Error('down'), { code: 'broker_unavailable' }));
        }
        return super.subscribe(...args);
      }
    }
    const broker = new FlakyBroker();
    const layout = partitionedChannelLayout(4);
    const { users, routes } = recordingRoutes();
    const partitions = await UserPartitions.start(broker, layout, routes);
    await assert.rejects(partitions.hold(3), { code: 'broker_unavailable' });
    await partitions.settled();
    assert.deepEqual(partitions.subscribed(), []);
    // The channels subscribed before the failure were undone: nothing reaches the routes.
    await publishFills(createEventPublisher(broker, { layout }), [3]);
    assert.deepEqual(users, []);
    assert.equal(await partitions.hold(3), true);
    await publishFills(createEventPublisher(broker, { layout }), [3]);
    assert.deepEqual(users, [3]);
    await partitions.close();
  });
});
