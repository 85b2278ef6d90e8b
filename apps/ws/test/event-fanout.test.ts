import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Registry } from 'prom-client';
import { silentLogger } from '@repo/log';
import { redisKeys } from '@repo/redis';
import type { ClientConnection } from '../src/transport/connection.ts';
import { EventFanout } from '../src/event-fanout.ts';
import { GatewayMetrics } from '../src/metrics.ts';
import { PriceCache } from '../src/streams/price-cache.ts';
import { SubscriberIndex } from '../src/streams/subscriber-index.ts';
import { ThrottledWarning } from '../src/throttled-warning.ts';
import { encodeTextFrame } from '../src/transport/text-frame.ts';

/** Records the frames handed to it; stands in for a socket in the routing step. */
class RecordingSocket {
  readonly frames: Buffer[] = [];
  deliverPrice(_symbol: string, frame: Buffer) {
    this.frames.push(frame);
    return true;
  }
  deliverPrivate(_channel: string, frame: Buffer) {
    this.frames.push(frame);
    return true;
  }
  deliverOrder(frame: Buffer) {
    this.frames.push(frame);
    return 'sent';
  }
}

function setup() {
  const index = new SubscriberIndex<ClientConnection>();
  const fanout = new EventFanout({
    index,
    metrics: new GatewayMetrics(new Registry(), { connections: () => 0, brokerUp: () => true }),
    prices: new PriceCache([], 10),
    malformedWarning: new ThrottledWarning(silentLogger),
  });
  const handlers = new Map(fanout.handlers().map(({ channel, handler }) => [channel, handler]));
  const socket = () => new RecordingSocket() as RecordingSocket & ClientConnection;
  return { index, handlers, socket };
}

describe('event fan-out', () => {
  it('serialises each event once and hands the same frame to every recipient, and to recipients only', () => {
    const { index, handlers, socket } = setup();
    const priceSubscribers = [socket(), socket(), socket()];
    for (const s of priceSubscribers) index.add('prices', s, null);
    const userSeven = [socket(), socket()];
    for (const s of userSeven) index.add('orders', s, 7);
    const userEight = socket();
    index.add('orders', userEight, 8);

    handlers.get(redisKeys.CHANNELS.priceUpdate())!(
      JSON.stringify({ symbol: 'SOL', price: '1', timestamp: '2025-01-01T00:00:00.000Z' }),
    );
    handlers.get(redisKeys.CHANNELS.orderFilled())!(
      JSON.stringify({
        userId: 7,
        orderId: 1,
        side: 'buy',
        baseAsset: 'SOL',
        quoteAsset: 'USD',
        executedPrice: '1',
        executedSize: '1',
        fee: '0',
        timestamp: '2025-01-01T00:00:00.000Z',
      }),
    );

    const priceFrame = priceSubscribers[0]!.frames[0]!;
    for (const s of priceSubscribers)
      assert.equal(s.frames.length === 1 && s.frames[0], priceFrame, 'same Buffer instance');
    const orderFrame = userSeven[0]!.frames[0]!;
    assert.equal(userSeven[1]!.frames[0], orderFrame, 'same Buffer instance');
    assert.equal(userEight.frames.length, 0);
    // A complete unmasked text frame: FIN + opcode 1, 7-bit length, then the JSON.
    assert.equal(priceFrame[0], 0x81);
    assert.equal(priceFrame[1], priceFrame.length - 2);
    assert.deepEqual(JSON.parse(priceFrame.subarray(2).toString()), {
      type: 'price',
      symbol: 'SOL',
      price: '1',
      timestamp: '2025-01-01T00:00:00.000Z',
    });
  });
});
