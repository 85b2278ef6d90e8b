import assert from 'node:assert/strict';
import { describe, it, beforeEach, afterEach } from 'node:test';
import type { Broker } from '../src/index.ts';
import { listen } from './listen.ts';

/**
 * The one contract every Broker implementation passes. `make` returns a fresh, connected
 * broker over a clean store; the suite closes it.
 */
export function brokerContract(name: string, make: () => Promise<Broker>): void {
  describe(`Broker contract: ${name}`, () => {
    let broker: Broker;
    beforeEach(async () => {
      broker = await make();
    });
    afterEach(async () => {
      await broker.close();
    });

    it('delivers a published message to a subscriber of that channel only', async () => {
      const a = await listen(broker, 'a');
      const b = await listen(broker, 'b');
      await broker.publish('a', 'hello');
      await broker.publish('b', 'marker');
      // Delivery is in order per channel and both channels share one connection: once the
      // marker is on b, anything wrongly routed from a would be there before it.
      assert.equal(await a.next(), 'hello');
      assert.equal(await b.next(), 'marker');
      assert.deepEqual(a.messages, ['hello']);
      assert.deepEqual(b.messages, ['marker']);
    });

    it('delivers in publish order', async () => {
      const got: string[] = [];
      let done!: () => void;
      const all = new Promise<void>((r) => (done = r));
      await broker.subscribe('order', (m) => {
        got.push(m);
        if (got.length === 100) done();
      });
      for (let i = 0; i < 100; i++) await broker.publish('order', String(i));
      await all;
      assert.deepEqual(
        got,
        Array.from({ length: 100 }, (_, i) => String(i)),
      );
    });

    it('calls every handler of a channel, and a throwing handler does not stop the others', async () => {
      await broker.subscribe('x', () => {
        throw new Error('boom');
      });
      const second = await listen(broker, 'x');
      await broker.publish('x', 'm');
      assert.equal(await second.next(), 'm');
    });

    it('stops delivering to a handler after unsubscribe, keeps the others', async () => {
      const removed = await listen(broker, 'u');
      const kept = await listen(broker, 'u');
      await removed.stop();
      await broker.publish('u', 'after');
      assert.equal(await kept.next(), 'after');
      assert.deepEqual(removed.messages, []);
    });

    it('keeps the latest value per key', async () => {
      assert.equal(await broker.getLatest('k1'), null);
      await broker.setLatest('k1', 'one');
      await broker.setLatest('k1', 'two');
      await broker.setLatest('k2', 'three');
      assert.equal(await broker.getLatest('k1'), 'two');
      assert.deepEqual(await broker.getLatestMany(['k1', 'missing', 'k2']), ['two', null, 'three']);
      assert.deepEqual(await broker.getLatestMany([]), []);
    });

    it('is up while open, and refuses work after close', async () => {
      assert.equal(broker.isUp(), true);
      await broker.close();
      assert.equal(broker.isUp(), false);
      await assert.rejects(broker.publish('a', 'x'), { code: 'broker_closed' });
      broker = await make();
    });
  });
}
