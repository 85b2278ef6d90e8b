import assert from 'node:assert/strict';
import { describe, it, beforeEach, afterEach } from 'node:test';
import type { Broker } from '../src/index.ts';
import { nextValue } from '@repo/test-support';

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
      const onA: string[] = [];
      const onB: string[] = [];
      await broker.subscribe('a', (m) => onA.push(m));
      await broker.subscribe('b', (m) => onB.push(m));
      const received = nextValue<string>((cb) => void broker.subscribe('a', cb));
      await broker.publish('a', 'hello');
      assert.equal(await received, 'hello');
      assert.deepEqual(onA, ['hello']);
      assert.deepEqual(onB, []);
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
      broker.subscribe('x', () => {
        throw new Error('boom');
      });
      const second = nextValue<string>((cb) => void broker.subscribe('x', cb));
      await new Promise((r) => setImmediate(r));
      await broker.publish('x', 'm');
      assert.equal(await second, 'm');
    });

    it('stops delivering to a handler after unsubscribe, keeps the others', async () => {
      const removed: string[] = [];
      const unsubscribe = await broker.subscribe('u', (m) => removed.push(m));
      const kept = nextValue<string>((cb) => void broker.subscribe('u', cb));
      await new Promise((r) => setImmediate(r));
      await unsubscribe();
      await broker.publish('u', 'after');
      assert.equal(await kept, 'after');
      assert.deepEqual(removed, []);
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
