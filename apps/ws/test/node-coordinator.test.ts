import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { describe, it } from 'node:test';
import { silentLogger } from '@repo/log';
import { waitFor } from '@repo/test-support';
import { ConnectionLedger } from '../src/connection-ledger.ts';
import { NodeCoordinator } from '../src/cluster/node-coordinator.ts';
import type { PrimaryMessage, WorkerMessage } from '../src/cluster/node-messages.ts';
import { createWorkerLink, type PrimaryChannel } from '../src/cluster/worker-link.ts';

/**
 * The node-wide connection limits of `WS_WORKERS`: the primary's ledger and the workers'
 * links to it, over an in-memory channel shaped like a cluster worker's `process`.
 */

class FakeChannel extends EventEmitter implements PrimaryChannel {
  connected = true;
  /** Every message sent, in order. */
  readonly sent: WorkerMessage[] = [];
  /** How late the primary gets each message (a busy primary). */
  delayMs = 0;
  readonly #deliver: (message: WorkerMessage, reply: (m: PrimaryMessage) => void) => void;
  constructor(deliver: (message: WorkerMessage, reply: (m: PrimaryMessage) => void) => void) {
    super();
    this.#deliver = deliver;
  }
  send(message: WorkerMessage): boolean {
    this.sent.push(message);
    // Asynchronous, like IPC.
    setTimeout(() => this.#deliver(message, (reply) => setImmediate(() => this.emit('message', reply))), this.delayMs);
    return true;
  }
}

function node(limits: { maxConnectionsPerAddress?: number; maxConnections?: number; upgradesPerAddress?: number }) {
  const coordinator = new NodeCoordinator({
    configured: 2,
    limits,
    logger: silentLogger,
    aggregateMetrics: () => Promise.resolve('tradewire_ws_connections 3\n'),
  });
  const worker = (id: number, timeoutMs?: number) => {
    const channel = new FakeChannel((message, reply) => coordinator.handle(id, message, reply));
    const link = createWorkerLink({ workerId: id, channel, ...(timeoutMs ? { timeoutMs } : {}) });
    return { link, channel };
  };
  return { coordinator, worker };
}

describe('ConnectionLedger', () => {
  it('counts attempts, open sockets per address and in all; exempt sockets count only in all', () => {
    let now = 0;
    const ledger = new ConnectionLedger({
      upgradesPerAddress: 3,
      upgradeWindowMs: 1000,
      maxConnectionsPerAddress: 2,
      maxConnections: 3,
      now: () => now,
    });
    assert.deepEqual(ledger.reserve('a'), { ok: true });
    assert.deepEqual(ledger.reserve('a'), { ok: true });
    assert.deepEqual(ledger.reserve('a'), { ok: false, reason: 'address_connections' });
    assert.deepEqual(ledger.reserve('a'), { ok: false, reason: 'address_rate', retryAfterMs: 1000 });
    assert.deepEqual(ledger.reserve(null), { ok: true });
    assert.deepEqual(ledger.reserve('b'), { ok: false, reason: 'max_connections' });
    ledger.release(null);
    assert.deepEqual(ledger.reserve('b'), { ok: true });
    assert.equal(ledger.total, 3);
    now = 1000;
    ledger.release('a');
    assert.deepEqual(ledger.reserve('a'), { ok: true }, 'a new window, and a slot given back');
  });
});

describe('NodeCoordinator and worker links', () => {
  it('holds the per-address cap across workers, and frees what a dead worker held', async () => {
    const { coordinator, worker } = node({ maxConnectionsPerAddress: 3 });
    const one = worker(1);
    const two = worker(2);
    assert.deepEqual(await one.link.ledger.reserve('10.0.0.1'), { ok: true });
    assert.deepEqual(await two.link.ledger.reserve('10.0.0.1'), { ok: true });
    assert.deepEqual(await two.link.ledger.reserve('10.0.0.1'), { ok: true });
    assert.deepEqual(await one.link.ledger.reserve('10.0.0.1'), { ok: false, reason: 'address_connections' });
    assert.equal(coordinator.health().connections, 3);

    coordinator.workerGone(2);
    assert.equal(coordinator.health().connections, 1);
    assert.deepEqual(await one.link.ledger.reserve('10.0.0.1'), { ok: true });
    // A release from a worker already counted as gone frees nothing twice.
    coordinator.handle(2, { type: 'tradewire:release', keys: ['10.0.0.1'] }, () => {});
    assert.equal(coordinator.health().connections, 2);
    one.link.ledger.release('10.0.0.1');
    await waitFor(() => coordinator.health().connections === 1, { what: 'the release' });
  });

  it('ignores a reservation a worker sent before it exited that arrives after', () => {
    const { coordinator } = node({ maxConnectionsPerAddress: 1, maxConnections: 2 });
    const reserve = (workerId: number, requests: { id: number; key: string | null }[]) => {
      const replies: PrimaryMessage[] = [];
      coordinator.handle(workerId, { type: 'tradewire:reserve', requests }, (m) => replies.push(m));
      return replies;
    };
    coordinator.workerGone(2);
    // Still in worker 2's IPC pipe when node:cluster reported its exit.
    assert.deepEqual(reserve(2, [{ id: 1, key: '10.0.0.7' }]), []);
    assert.deepEqual(reserve(2, [{ id: 2, key: null }]), []);
    assert.equal(coordinator.health().connections, 0);
    // The address's slot and the node's are all still there for a live worker.
    assert.deepEqual(
      reserve(1, [
        { id: 3, key: '10.0.0.7' },
        { id: 4, key: null },
      ]),
      [
        {
          type: 'tradewire:reserved',
          answers: [
            { id: 3, reservation: { ok: true } },
            { id: 4, reservation: { ok: true } },
          ],
        },
      ],
    );
  });

  it('ignores a ready a worker sent before it exited that arrives after', () => {
    const readied: number[] = [];
    const coordinator = new NodeCoordinator({
      configured: 2,
      logger: silentLogger,
      onReady: (id) => readied.push(id),
      aggregateMetrics: () => Promise.resolve(''),
    });
    coordinator.handle(1, { type: 'tradewire:ready' }, () => {});
    coordinator.workerGone(2);
    coordinator.handle(2, { type: 'tradewire:ready' }, () => {});
    assert.deepEqual(readied, [1], 'the dead worker is not handed connections');
    assert.deepEqual(coordinator.health().workers, { up: 1, configured: 2 });
  });

  it('holds the connection cap across workers', async () => {
    const { worker } = node({ maxConnections: 2 });
    const one = worker(1);
    const two = worker(2);
    assert.equal((await one.link.ledger.reserve(null)).ok, true);
    assert.equal((await two.link.ledger.reserve('10.0.0.2')).ok, true);
    assert.deepEqual(await one.link.ledger.reserve('10.0.0.3'), { ok: false, reason: 'max_connections' });
  });

  it('counts workers up and answers health and metrics for the whole node', async () => {
    const { coordinator, worker } = node({});
    const one = worker(1);
    assert.deepEqual((await one.link.health()).workers, { up: 0, configured: 2 });
    one.link.ready();
    worker(2).link.ready();
    await waitFor(() => coordinator.health().workers.up === 2, { what: 'both workers ready' });
    assert.deepEqual(await one.link.health(), { connections: 0, workers: { up: 2, configured: 2 } });
    coordinator.restarting();
    const text = await one.link.metrics();
    assert.match(text, /^tradewire_ws_connections 3$/m);
    assert.match(text, /^tradewire_ws_workers_up 2$/m);
    assert.match(text, /^tradewire_ws_workers_configured 2$/m);
    assert.match(text, /^tradewire_ws_worker_restarts_total 1$/m);
  });

  it('fails a reservation the primary does not answer, and gives back a grant that comes too late', async () => {
    const { coordinator, worker } = node({ maxConnectionsPerAddress: 1 });
    const one = worker(1, 50);
    one.channel.delayMs = 150;
    await assert.rejects(Promise.resolve(one.link.ledger.reserve('10.0.0.4')), /did not answer tradewire:reserve/);
    // The primary grants it after the worker gave up; the worker hands the slot straight back.
    await waitFor(() => coordinator.health().connections === 1, { what: 'the late grant' });
    await waitFor(() => coordinator.health().connections === 0, { what: 'the late grant given back' });
    one.channel.delayMs = 0;
    assert.deepEqual(await one.link.ledger.reserve('10.0.0.4'), { ok: true });
  });

  it('survives a send the primary can no longer take (EPIPE while it drains at shutdown)', async () => {
    // Shaped like Node's process.send: without a callback, an asynchronous failure is an
    // 'error' event, which kills a cluster worker that has no listener for it.
    class GoneChannel extends EventEmitter implements PrimaryChannel {
      connected = true;
      send(_message: WorkerMessage, callback?: (err: Error | null) => void): boolean {
        const err = Object.assign(new Error('write EPIPE'), { code: 'EPIPE' });
        setImmediate(() => (callback ? callback(err) : this.emit('error', err)));
        return true;
      }
    }
    const channel = new GoneChannel();
    const errors: unknown[] = [];
    channel.on('error', (err) => errors.push(err));
    const link = createWorkerLink({ workerId: 1, channel });
    link.ledger.release('10.0.0.5');
    link.ready();
    await new Promise((resolve) => setImmediate(resolve));
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(errors, []);
  });

  it('sends the reservations and the releases of one event-loop turn as one message each, releases first', async () => {
    const { coordinator, worker } = node({ maxConnectionsPerAddress: 2 });
    const one = worker(1);
    const first = await Promise.all([one.link.ledger.reserve('10.0.0.6'), one.link.ledger.reserve('10.0.0.6')]);
    assert.deepEqual(first, [{ ok: true }, { ok: true }]);
    assert.equal(one.channel.sent.length, 1);
    one.channel.sent.length = 0;
    // In one turn: a socket closes, and three upgrades come in. The release is counted first,
    // so one of them gets the freed slot and the per-address cap still holds.
    one.link.ledger.release('10.0.0.6');
    const answers = await Promise.all([
      one.link.ledger.reserve('10.0.0.6'),
      one.link.ledger.reserve('10.0.0.6'),
      one.link.ledger.reserve(null),
    ]);
    assert.deepEqual(answers, [{ ok: true }, { ok: false, reason: 'address_connections' }, { ok: true }]);
    assert.deepEqual(
      one.channel.sent.map((m) => m.type),
      ['tradewire:release', 'tradewire:reserve'],
    );
    assert.equal(coordinator.health().connections, 3);
  });

  it('refuses malformed batches', () => {
    const { coordinator } = node({});
    const replies: unknown[] = [];
    for (const message of [
      { type: 'tradewire:reserve', requests: [{ id: 1, key: 7 }] },
      { type: 'tradewire:reserve', requests: 'x' },
      { type: 'tradewire:reserve', requests: [null] },
      { type: 'tradewire:release', keys: [1] },
      { type: 'tradewire:release', keys: null },
    ])
      coordinator.handle(1, message, (reply) => replies.push(reply));
    assert.deepEqual(replies, []);
    assert.equal(coordinator.health().connections, 0);
  });

  it('ignores messages that are not its own', () => {
    const { coordinator } = node({});
    const replies: unknown[] = [];
    for (const message of [null, 'x', { type: 'prom-client:getMetricsRes' }, { type: 'tradewire:reserve', id: 'x' }])
      coordinator.handle(1, message, (reply) => replies.push(reply));
    assert.deepEqual(replies, []);
  });
});
