import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { OrderFilledEvent } from '@repo/events';
import type { ReplyMessage, SubscribeRequest } from '@repo/protocol';
import { EVENT_CHANNELS } from '../src/broker-contract.ts';
import { defaultHistoryReadLimits, HistoryReader, type HistoryReadLimits } from '../src/streams/history-reader.ts';
import { OrderChannel } from '../src/streams/order-channel.ts';
import type { GatewayLimits } from '../src/limits.ts';
import { GatedHistory } from './memory-order-history.ts';
import { channelDeps, FakeOwner, FakeSink, orderFilled, routeOf } from './stream-fakes.ts';
import { metricValue } from './metric-value.ts';

function setup(
  options: { history?: boolean; limits?: Partial<GatewayLimits>; historyLimits?: Partial<HistoryReadLimits> } = {},
) {
  const deps = channelDeps(options.limits);
  const history = new GatedHistory();
  const channel = new OrderChannel({
    ...deps,
    history:
      options.history === false
        ? null
        : new HistoryReader(history, { ...defaultHistoryReadLimits(), ...options.historyLimits }),
  });
  /** Records the event in history, as the outbox transaction does. */
  const commit = (userId: number, seq: number) => history.memory.record('order_filled', orderFilled(userId, seq));
  /** Delivers the event live, as the relay's publish does. */
  const publish = (event: OrderFilledEvent) => routeOf(channel, EVENT_CHANNELS.order_filled)(JSON.stringify(event));
  const subscribe = (userId: number, request: Partial<SubscribeRequest> = {}) => {
    const sink = new FakeSink();
    const owner = new FakeOwner();
    const stream = channel.subscribe(sink, owner, userId);
    owner.streams.set('orders', stream);
    const replies: ReplyMessage[] = [];
    const opened = stream.open({ type: 'subscribe', channel: 'orders', ...request }, (m) => {
      replies.push(m);
      sink.send(m);
    });
    return { sink, owner, stream, replies, opened };
  };
  return { deps, history, channel, commit, publish, subscribe };
}

const seqsOf = (sink: FakeSink) => sink.ofType('order_filled').map((m) => m.seq);

describe('order stream', () => {
  it('without a history: subscribed without seq, and live events as they come, duplicates dropped', async () => {
    const fx = setup({ history: false });
    const { sink, opened } = fx.subscribe(7, { since: 3 });
    await opened;
    for (const seq of [1, 2, 2, 5]) fx.publish(orderFilled(7, seq));
    assert.deepEqual(sink.messages()[0], { type: 'subscribed', channel: 'orders' });
    assert.deepEqual(seqsOf(sink), [1, 2, 5]);
    assert.equal(await metricValue(fx.deps.registry, 'tradewire_ws_events_dropped_total', { reason: 'duplicate' }), 1);
  });

  it('starts a fresh subscription after the latest seq and replays nothing', async () => {
    const fx = setup();
    for (let seq = 1; seq <= 3; seq++) fx.commit(7, seq);
    const { sink, replies, opened } = fx.subscribe(7);
    await opened;
    fx.publish(orderFilled(7, 3)); // published twice
    fx.commit(7, 4);
    fx.publish(orderFilled(7, 4));
    assert.deepEqual(replies, [{ type: 'subscribed', channel: 'orders', seq: 3 }]);
    assert.deepEqual(seqsOf(sink), [4]);
  });

  it('replays after since a page at a time, each after the socket drained, then what arrived meanwhile', async () => {
    const fx = setup({ historyLimits: { pageEvents: 2 } });
    for (let seq = 1; seq <= 6; seq++) fx.commit(7, seq);
    const { sink, replies, opened } = fx.subscribe(7, { since: 1 });
    sink.slow = true;
    await sink.written((m) => m.type === 'order_filled' && m.seq === 3);
    fx.commit(7, 7);
    fx.publish(orderFilled(7, 6)); // replayed too: a duplicate at the seam
    fx.publish(orderFilled(7, 7));
    assert.deepEqual(seqsOf(sink), [2, 3], 'waits for the drain before the next page');
    sink.drain();
    await opened;
    assert.deepEqual(replies, [{ type: 'subscribed', channel: 'orders', recovered: true, seq: 6 }]);
    fx.publish(orderFilled(7, 8));
    assert.deepEqual(seqsOf(sink), [2, 3, 4, 5, 6, 7, 8]);
  });

  it('says recovered:false when the history no longer reaches since, and goes on from the latest seq', async () => {
    const fx = setup();
    for (let seq = 1; seq <= 10; seq++) fx.commit(7, seq);
    fx.history.memory.keepLast(3);
    const { sink, replies, opened } = fx.subscribe(7, { since: 2 });
    await opened;
    fx.publish(orderFilled(7, 11));
    assert.deepEqual(replies, [{ type: 'subscribed', channel: 'orders', recovered: false, seq: 10 }]);
    assert.deepEqual(seqsOf(sink), [11]);
  });

  it('fills a gap in live events from the history before what follows it', async () => {
    const fx = setup();
    const { sink, opened } = fx.subscribe(7);
    await opened;
    for (const seq of [1, 2, 3]) fx.commit(7, seq);
    fx.publish(orderFilled(7, 1));
    fx.publish(orderFilled(7, 3)); // 2 was lost on the way
    await sink.written((m) => m.type === 'order_filled' && m.seq === 3);
    assert.deepEqual(seqsOf(sink), [1, 2, 3]);
  });

  it('closes the socket with 1011 when the history does not hold the gap', async () => {
    const fx = setup();
    const { sink, opened } = fx.subscribe(7);
    await opened;
    fx.commit(7, 1);
    fx.publish(orderFilled(7, 1));
    fx.publish(orderFilled(7, 3)); // 2 is nowhere
    await sink.whenClosed();
    assert.deepEqual(sink.closedWith, { code: 1011, reason: 'order history unavailable; resubscribe' });
    assert.deepEqual(seqsOf(sink), [1]);
  });

  it('answers internal_error and ends when the history cannot be read for since', async () => {
    const fx = setup();
    fx.history.fail = true;
    const { owner, stream, replies, opened } = fx.subscribe(7, { since: 4 });
    await opened;
    assert.deepEqual(replies, [
      { type: 'error', code: 'internal_error', message: 'order history is unavailable right now; retry' },
    ]);
    assert.deepEqual(owner.endedStreams, [stream]);
    assert.equal(await metricValue(fx.deps.registry, 'tradewire_ws_subscriptions', { channel: 'orders' }), 0);
  });

  it('closes a socket with 4008 when the events held during a replay pass the hard limit', async () => {
    const fx = setup({ limits: { softBufferedBytes: 16 * 1024, hardBufferedBytes: 32 * 1024 } });
    fx.commit(7, 1);
    fx.history.hold();
    const { sink, opened } = fx.subscribe(7, { since: 0 });
    for (let seq = 2; sink.isOpen && seq < 1000; seq++) fx.publish(orderFilled(7, seq));
    assert.deepEqual(sink.closedWith, { code: 4008, reason: 'slow consumer' });
    fx.history.release();
    await opened;
    assert.deepEqual(seqsOf(sink), []);
  });

  it('after a broker outage, catches every stream up from the history', async () => {
    const fx = setup();
    const a = fx.subscribe(7);
    const b = fx.subscribe(8);
    await Promise.all([a.opened, b.opened]);
    fx.commit(7, 1); // published while the gateway was not subscribed
    fx.commit(7, 2);
    fx.commit(8, 1);
    fx.channel.resumed();
    await a.sink.written((m) => m.type === 'order_filled' && m.seq === 2);
    await b.sink.written((m) => m.type === 'order_filled' && m.seq === 1);
    assert.deepEqual([seqsOf(a.sink), seqsOf(b.sink)], [[1, 2], [1]]);
  });

  it('a broker outage while a replay reads: it reads again, and a recovery does not join its read', async () => {
    const fx = setup();
    fx.commit(7, 1);
    const live = fx.subscribe(7); // another tab, live from seq 1
    await live.opened;
    fx.history.hold();
    const replaying = fx.subscribe(7, { since: 1 }); // reconnecting: its read is in flight
    await fx.history.untilReads(2);
    fx.commit(7, 2); // published while the gateway was cut off: it never hears it live
    fx.channel.resumed();
    fx.history.release();
    await replaying.opened;
    await live.sink.written((m) => m.type === 'order_filled' && m.seq === 2);
    await replaying.sink.written((m) => m.type === 'order_filled' && m.seq === 2);
    assert.deepEqual([seqsOf(live.sink), seqsOf(replaying.sink)], [[2], [2]]);
  });

  it('answers auth_required when the session ended while the history was read, also when the read failed', async () => {
    for (const fail of [false, true]) {
      const fx = setup();
      fx.commit(7, 1);
      fx.history.hold();
      const { sink, stream, replies, opened } = fx.subscribe(7, { since: 0 });
      await fx.history.untilReads(1);
      stream.close(); // what the session does on session_revoked or session_expired
      fx.history.fail = fail;
      fx.history.release();
      await opened;
      assert.deepEqual(replies, [
        { type: 'error', code: 'auth_required', message: 'authenticate before subscribing to orders' },
      ]);
      assert.deepEqual(seqsOf(sink), []);
    }
  });

  it('answers a subscription cut short by a newer one not at all, and only the newer one when it closes', async () => {
    const fx = setup();
    fx.commit(7, 1);
    fx.history.hold();
    const first = fx.subscribe(7, { since: 0 });
    const secondReplies: ReplyMessage[] = [];
    const second = first.stream.open({ type: 'subscribe', channel: 'orders' }, (m) => secondReplies.push(m));
    first.stream.close();
    fx.history.release();
    await Promise.all([first.opened, second]);
    assert.deepEqual(first.replies, [], 'superseded by the second subscribe, not ended by the session');
    assert.deepEqual(secondReplies, [
      { type: 'error', code: 'auth_required', message: 'authenticate before subscribing to orders' },
    ]);
  });

  it('once closed, gets nothing more and leaves the index', async () => {
    const fx = setup();
    const { sink, stream, opened } = fx.subscribe(7);
    await opened;
    stream.close();
    fx.commit(7, 1);
    fx.publish(orderFilled(7, 1));
    assert.deepEqual(seqsOf(sink), []);
    assert.equal(await metricValue(fx.deps.registry, 'tradewire_ws_subscriptions', { channel: 'orders' }), 0);
  });
});
