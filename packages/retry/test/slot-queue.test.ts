import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SlotQueue } from '../src/index.ts';

const later = (ms: number) => Date.now() + ms;

describe('slot queue', () => {
  it('grants concurrency slots at once, queues maxWaiting more in order, refuses the rest', async () => {
    const slots = new SlotQueue({ concurrency: 1, maxWaiting: 2 });
    const first = slots.acquire(later(5000));
    const second = slots.acquire(later(5000));
    const third = slots.acquire(later(5000));
    assert.equal(await first?.granted, true);
    assert.equal(slots.acquire(later(5000)), null, 'refused, not queued');
    slots.release();
    assert.equal(await second?.granted, true, 'the first in line gets the slot');
    slots.release();
    assert.equal(await third?.granted, true);
    slots.release();
    assert.equal(await slots.acquire(later(5000))?.granted, true, 'free again');
  });

  it('gives up a waiter at its deadline: it leaves the line and never gets a slot', async () => {
    const changes: [number, number][] = [];
    const slots = new SlotQueue({
      concurrency: 1,
      maxWaiting: 1,
      onChange: (held, waiting) => changes.push([held, waiting]),
    });
    slots.acquire(later(5000));
    const late = slots.acquire(later(20));
    assert.equal(await late?.granted, false);
    assert.equal(slots.waiting, 0);
    const next = slots.acquire(later(5000));
    assert.ok(next, 'the line has room again');
    slots.release();
    assert.equal(await next.granted, true);
    slots.release();
    assert.deepEqual(changes, [
      [1, 0],
      [1, 1],
      [1, 0],
      [1, 1],
      [1, 0],
      [0, 0],
    ]);
  });

  it('skips a waiter whose deadline passed before its timer ran', async () => {
    const slots = new SlotQueue({ concurrency: 1, maxWaiting: 2 });
    slots.acquire(later(5000));
    const late = slots.acquire(later(1));
    const inTime = slots.acquire(later(5000));
    const until = Date.now() + 5;
    while (Date.now() <= until); // the event loop is busy: no timer runs
    slots.release();
    assert.equal(await late?.granted, false);
    assert.equal(await inTime?.granted, true);
  });

  it('keeps a waiter in line until a later deadline once extended', async () => {
    const slots = new SlotQueue({ concurrency: 1, maxWaiting: 2 });
    slots.acquire(later(5000));
    const waiter = slots.acquire(later(20));
    const witness = slots.acquire(later(20)); // gives up no earlier than the waiter would have
    waiter?.extend(later(5000));
    waiter?.extend(later(10)); // an earlier deadline changes nothing
    assert.equal(await witness?.granted, false);
    assert.equal(slots.waiting, 1, 'the extended waiter is still in line');
    slots.release();
    assert.equal(await waiter?.granted, true);
  });
});
