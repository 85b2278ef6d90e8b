import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import calculateSlot from 'cluster-key-slot';
import {
  DEFAULT_PARTITIONS,
  DESIGN_CHANNEL_LAYOUT,
  EVENT_CHANNELS,
  MAX_PARTITIONS,
  MemoryBroker,
  PRIVATE_EVENT_KINDS,
  checkLayoutAgreement,
  partitionedChannelLayout,
} from '../src/index.ts';

const fill = {
  userId: 37,
  orderId: 1,
  side: 'buy' as const,
  baseAsset: 'SOL',
  quoteAsset: 'USD',
  executedPrice: '1',
  executedSize: '1',
  fee: '0',
  timestamp: '2026-01-01T00:00:00.000Z',
};

describe('channel layouts', () => {
  it('design: the design channel of each kind, whatever the user or symbol', () => {
    const layout = DESIGN_CHANNEL_LAYOUT;
    assert.equal(layout.partitions, 1);
    assert.equal(layout.partitionOf(37), 0);
    assert.deepEqual(layout.channelsFor('order_filled', fill), ['trading:events:order:filled']);
    assert.deepEqual(layout.channelsFor('price', { symbol: 'BTC', price: '1', timestamp: fill.timestamp }), [
      'trading:events:price:update',
    ]);
    assert.deepEqual(layout.channelsFor('session_revoked', { sessionId: 's' }), ['trading:events:session:revoked']);
    for (const kind of PRIVATE_EVENT_KINDS) assert.equal(layout.privateChannel(kind, 0), EVENT_CHANNELS[kind]);
    assert.equal(layout.priceChannel('BTC'), EVENT_CHANNELS.price);
    assert.deepEqual(layout.priceChannels(['SOL', 'BTC']), [EVENT_CHANNELS.price]);
    assert.deepEqual(layout.priceChannels([]), [EVENT_CHANNELS.price]);
  });

  it('partitioned: <design channel>:{userId mod partitions}, prices by symbol', () => {
    const layout = partitionedChannelLayout();
    assert.equal(layout.partitions, DEFAULT_PARTITIONS);
    assert.equal(layout.partitionOf(37), 37 % 16);
    assert.deepEqual(layout.channelsFor('order_filled', fill), ['trading:events:order:filled:{5}']);
    assert.deepEqual(
      layout.channelsFor('portfolio', { userId: 16, balances: [], positions: [], timestamp: fill.timestamp }),
      ['trading:events:portfolio:update:{0}'],
    );
    assert.deepEqual(layout.channelsFor('session_revoked', { sessionId: 's', userId: 37 }), [
      'trading:events:session:revoked:{5}',
    ]);
    assert.deepEqual(layout.channelsFor('price', { symbol: 'BTC', price: '1', timestamp: fill.timestamp }), [
      'trading:events:price:update:{BTC}',
    ]);
    assert.deepEqual(layout.priceChannels(['SOL', 'BTC', 'SOL']), [
      'trading:events:price:update:{SOL}',
      'trading:events:price:update:{BTC}',
    ]);
    // A revocation that does not say whose session it was must reach whichever gateway holds it.
    const everywhere = layout.channelsFor('session_revoked', { sessionId: 's' });
    assert.equal(everywhere.length, 16);
    assert.equal(new Set(everywhere).size, 16);
  });

  it('puts the private channels of one partition on one slot, and spreads partitions over slots', () => {
    const layout = partitionedChannelLayout(16);
    const slotsOf = (p: number) => new Set(PRIVATE_EVENT_KINDS.map((k) => calculateSlot(layout.privateChannel(k, p))));
    for (let p = 0; p < 16; p++) assert.equal(slotsOf(p).size, 1, `partition ${p} on one slot`);
    const slots = new Set(Array.from({ length: 16 }, (_, p) => [...slotsOf(p)][0]));
    assert.equal(slots.size, 16, 'every partition on its own slot');
  });

  it('refuses a partition count that is not an integer from 1 to the maximum', () => {
    for (const bad of [0, -1, 1.5, Number.NaN, MAX_PARTITIONS + 1]) {
      assert.throws(() => partitionedChannelLayout(bad), RangeError);
    }
    assert.equal(partitionedChannelLayout(1).partitionOf(12345), 0);
    assert.throws(() => partitionedChannelLayout(4).privateChannel('order_filled', 4), RangeError);
  });
});

describe('checkLayoutAgreement', () => {
  it('records the first partition count and refuses a process with another one', async () => {
    const broker = new MemoryBroker();
    await checkLayoutAgreement(broker, DESIGN_CHANNEL_LAYOUT);
    assert.equal(await broker.getLatest('trading:layout:partitions'), null, 'the design layout records nothing');
    await checkLayoutAgreement(broker, partitionedChannelLayout(16));
    await checkLayoutAgreement(broker, partitionedChannelLayout(16));
    await assert.rejects(checkLayoutAgreement(broker, partitionedChannelLayout(8)), (err: Error) => {
      assert.equal((err as { code?: string }).code, 'layout_mismatch');
      assert.match(err.message, /REDIS_PARTITIONS is 8 here but 16 in the cluster/);
      return true;
    });
    await broker.close();
  });
});
