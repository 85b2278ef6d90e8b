import { redisKeys } from '@repo/redis';
import type { Broker } from './broker.ts';
import type { ChannelLayout } from './channel-layout.ts';

/** Another process of the deployment publishes or subscribes with a different partition count. */
export class LayoutMismatchError extends Error {
  readonly code = 'layout_mismatch';
  constructor(mine: number, theirs: string) {
    super(
      `REDIS_PARTITIONS is ${mine} here but ${theirs} in the cluster (${redisKeys.partitionCount()}): every process ` +
        `of a deployment must use the same count, or publishers and gateways miss each other's channels`,
    );
    this.name = 'LayoutMismatchError';
  }
}

/**
 * Records the layout's partition count in the broker the first time, and throws
 * `LayoutMismatchError` when a different one is recorded. Run at start in Redis Cluster mode, so
 * a process with the wrong `REDIS_PARTITIONS` stops instead of silently losing events. Changing
 * the count means stopping every process and deleting the key.
 */
export async function checkLayoutAgreement(broker: Broker, layout: ChannelLayout): Promise<void> {
  if (layout.kind !== 'partitioned') return;
  const key = redisKeys.partitionCount();
  const recorded = await broker.getLatest(key);
  if (recorded === null) {
    await broker.setLatest(key, String(layout.partitions));
    return;
  }
  if (recorded !== String(layout.partitions)) throw new LayoutMismatchError(layout.partitions, recorded);
}
