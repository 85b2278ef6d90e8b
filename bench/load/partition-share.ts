import { monoMs, sleep } from '../lib/clock.ts';
import { readUsersFile, type SeededUser } from '../servers/sessions.ts';
import { openFleet, type Fleet, type TargetServer } from './fleet.ts';
import { PublisherThread } from './scenarios.ts';
import { CAPACITY, createSharedBuffers, viewShared } from './shared-state.ts';
import { settle } from './window-signal.ts';

/**
 * Private routing over several gateways on the partitioned channel layout: each user's socket
 * goes to one gateway (by its partition, as a balancer that routes on the user would place it,
 * or at random, as a round-robin balancer would), `order_filled` events go to random users, and
 * each gateway's deliveries are counted, to set against what it received from Redis.
 */
export interface PartitionShareSpec {
  scenario: 'partition-share';
  redisUrl: string;
  /** One per gateway. */
  targets: TargetServer[];
  usersFile: string;
  users: number;
  placement: 'partition' | 'random';
  partitions: number;
  rate: number;
  measureS: number;
}

export interface PartitionShareLoad {
  published: number;
  /** Per gateway: its users and the events delivered to them. */
  users: number[];
  delivered: number[];
  lost: number;
  duplicated: number;
  wrongUser: number;
}

/** A small seeded PRNG (mulberry32): the random placement is the same in every run. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

/**
 * The gateway of each user. By partition: the partitions are cut into one contiguous range per
 * gateway. At random: seeded, not by index (user ids are consecutive, so index mod n would put
 * each partition's users on one gateway and look like routing by partition).
 */
export function placeUsers(users: SeededUser[], gateways: number, partitions: number, placement: string): number[] {
  const random = seeded(16);
  return users.map((u) =>
    placement === 'partition'
      ? Math.floor(((u.userId % partitions) * gateways) / partitions)
      : Math.floor(random() * gateways),
  );
}

export async function runPartitionShare(spec: PartitionShareSpec): Promise<PartitionShareLoad> {
  const users = readUsersFile(spec.usersFile, spec.users);
  const gateways = spec.targets.length;
  const gatewayOf = placeUsers(users, gateways, spec.partitions, spec.placement);
  const byGateway = spec.targets.map((_, g) => users.filter((_, i) => gatewayOf[i] === g));
  const buffers = createSharedBuffers();
  const shared = viewShared(buffers);
  const counts = new Uint8Array(CAPACITY);
  const delivered = spec.targets.map(() => 0);
  let wrongUser = 0;
  const publisher = new PublisherThread({
    redisUrl: spec.redisUrl,
    via: 'contract',
    kind: 'order',
    userIds: users.map((u) => u.userId),
    partitions: spec.partitions,
    buffers,
  });
  const fleets: Fleet[] = [];
  const closeAll = () => Promise.all([...fleets.map((f) => f.close()), publisher.close()]);
  try {
    for (let g = 0; g < gateways; g++) {
      const mine = byGateway[g]!;
      if (mine.length === 0) continue;
      fleets.push(
        await openFleet(spec.targets[g]!, {
          count: mine.length,
          channel: 'orders',
          tokens: mine.map((u) => u.token),
          inbox: {
            onPrice() {},
            onOrder(client, event) {
              delivered[g]! += 1;
              if (event.userId !== mine[client]!.userId || shared.targets[event.orderId % CAPACITY] !== event.userId)
                wrongUser += 1;
              counts[event.orderId % CAPACITY]! += 1;
            },
            onClose() {},
          },
        }),
      );
    }
    await publisher.ready();
    await settle();
    const measuredEvents = Math.round(spec.rate * spec.measureS);
    const published = await publisher.run({
      mode: 'rate',
      rate: spec.rate,
      warmupEvents: 0,
      measuredEvents,
      firstSeq: 1,
    });
    // Each event has one recipient: wait until every one arrived (or 10 s).
    const deadline = monoMs() + 10_000;
    const missing = () => {
      let n = 0;
      for (let seq = 1; seq <= published; seq++) if (counts[seq % CAPACITY] === 0) n += 1;
      return n;
    };
    while (missing() > 0 && monoMs() < deadline) await sleep(20);
    let duplicated = 0;
    for (let seq = 1; seq <= published; seq++) duplicated += Math.max(0, counts[seq % CAPACITY]! - 1);
    return {
      published,
      users: byGateway.map((u) => u.length),
      delivered,
      lost: missing(),
      duplicated,
      wrongUser,
    };
  } finally {
    await closeAll();
  }
}
