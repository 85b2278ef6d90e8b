import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { WebSocket } from 'ws';
import { createEventPublisher } from '@repo/broker';
import { connect, type TradewireClient } from '@repo/client';
import type { OrderFilledMessage, OrderRejectedMessage } from '@repo/protocol';
import { redisKeys } from '@repo/redis';
import { waitFor } from '@repo/test-support';
import { startGateway, type GatewayFixture } from './gateway-fixture.ts';
import { MemoryOrderHistory } from './memory-order-history.ts';
import { orderFilled } from './stream-fakes.ts';

/** The SDK (`@repo/client`) on a real gateway: its private handlers where the fake gateway cannot show it. */
describe('the SDK on the gateway: private streams', () => {
  const cleanups: (() => unknown)[] = [];
  afterEach(async () => {
    while (cleanups.length > 0) await cleanups.pop()!();
  });

  const setup = async () => {
    const history = new MemoryOrderHistory();
    const fx: GatewayFixture = await startGateway({ history });
    cleanups.push(() => fx.close());
    const client: TradewireClient = connect(fx.url, { WebSocket, logger: { warn: () => {} } });
    cleanups.push(() => client.close());
    const publisher = createEventPublisher(fx.broker);
    /** Commits order `seq` of user 7 (the history has it), then publishes it, as the relay does later. */
    const commit = (seq: number) => history.record('order_filled', orderFilled(7, seq));
    const publish = (seq: number) => publisher.publishOrderFilled(orderFilled(7, seq));
    return { fx, client, commit, publish };
  };
  const seqs = (into: number[]) => (message: OrderFilledMessage | OrderRejectedMessage) => into.push(message.seq!);

  it('an order committed but unpublished as a second orders handler joins reaches both handlers', async () => {
    const { fx, client, commit, publish } = await setup();
    fx.sessions.add('tok', 7);
    await client.auth('tok');
    const first: number[] = [];
    const second: number[] = [];
    await client.subscribe('orders', seqs(first));
    commit(1);
    // Joins while order 1 is in the history but not yet on the broker.
    await client.subscribe('orders', seqs(second));
    await publish(1);
    commit(2);
    await publish(2);
    await waitFor(() => first.includes(2) && second.includes(2), { what: 'the events of order 2' });
    // Order 1 reached the broker after the second handler joined: both get it.
    assert.deepEqual(first, [1, 2]);
    assert.deepEqual(second, [1, 2]);
  });

  it('after a logout the private handlers end; the same user signing in again subscribes afresh', async () => {
    const { fx, client, commit, publish } = await setup();
    fx.sessions.add('old', 7, { sessionId: 's-old' });
    const errors: string[] = [];
    client.on('error', (error) => errors.push(error.code));
    await client.auth('old');
    const before: number[] = [];
    await client.subscribe('orders', seqs(before));
    commit(1);
    await publish(1);
    await waitFor(() => before.length === 1, { what: 'order 1' });
    await fx.broker.publish(redisKeys.CHANNELS.sessionRevoked(), JSON.stringify({ sessionId: 's-old' }));
    await waitFor(() => errors.includes('session_revoked'), { what: 'the session_revoked error' });

    fx.sessions.add('new', 7, { sessionId: 's-new' });
    await client.auth('new');
    const after: number[] = [];
    // Before the fix this joined the ended subscription without a request and heard nothing.
    await client.subscribe('orders', seqs(after));
    commit(2);
    await publish(2);
    await waitFor(() => after.length === 1, { what: 'order 2 on the new subscription' });
    assert.deepEqual(after, [2]);
    assert.deepEqual(before, [1], 'the ended handler hears nothing after the logout');
    assert.equal(client.state, 'open');
  });
});
