import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { after, describe, it } from 'node:test';
import { waitFor } from '@repo/test-support';
import { ConnectionDispatcher, type DispatchTarget, type ShedReason } from '../src/cluster/connection-dispatcher.ts';

/**
 * The gateway node's front door, on real TCP sockets: workers are stand-ins that take the
 * handed sockets in this process, and answer the handoff when the test says so (a worker
 * whose loop is busy answers late).
 */

class Worker implements DispatchTarget {
  readonly got: Socket[] = [];
  /** Handoffs not yet answered: a stalled worker's. */
  readonly unanswered: (() => void)[] = [];
  stalled = false;
  /** Its channel is closed (a dying worker): every handoff fails at once, the socket untouched. */
  failing = false;
  attempts = 0;
  constructor(readonly id: number) {}
  send(socket: Socket, done: (err: Error | null) => void): void {
    this.attempts += 1;
    if (this.failing) {
      done(new Error('channel closed'));
      return;
    }
    this.got.push(socket);
    sockets.push(socket);
    const answer = () => done(null);
    if (this.stalled) this.unanswered.push(answer);
    else setImmediate(answer);
  }
  resume(): void {
    this.stalled = false;
    for (const answer of this.unanswered.splice(0)) answer();
  }
}

/** A client socket: what it was sent back, and whether the other side closed it. */
class Client {
  readonly socket: Socket;
  closed = false;
  constructor(port: number) {
    this.socket = connect(port, '127.0.0.1');
    sockets.push(this.socket);
    this.socket.on('error', () => {});
    this.socket.on('close', () => (this.closed = true));
  }
  static async open(port: number, n: number): Promise<Client[]> {
    const clients = Array.from({ length: n }, () => new Client(port));
    // Or closed: a socket the dispatcher closes at once may never report its connect.
    await Promise.all(
      clients.map((c) => new Promise((resolve) => c.socket.once('connect', resolve).once('close', resolve))),
    );
    return clients;
  }
  /** One after the other, so they reach the dispatcher in this order. */
  static async openInOrder(port: number, n: number): Promise<Client[]> {
    const clients: Client[] = [];
    for (let i = 0; i < n; i++) clients.push(...(await Client.open(port, 1)));
    return clients;
  }
}

const everything: { close(): void }[] = [];
/** Every socket of the tests, either end: the process exits only once all are closed. */
const sockets: Socket[] = [];
after(() => {
  for (const thing of everything) thing.close();
  for (const socket of sockets) socket.destroy();
});

async function start(options: ConstructorParameters<typeof ConnectionDispatcher>[0] = {}) {
  const shed: ShedReason[] = [];
  const dispatcher = new ConnectionDispatcher({ ...options, onShed: (reason) => shed.push(reason) });
  const port = await dispatcher.listen(0, '127.0.0.1');
  everything.push(dispatcher);
  return { dispatcher, port, shed };
}

function read(socket: Socket): Promise<string> {
  return new Promise((resolve) => socket.once('data', (chunk: Buffer) => resolve(chunk.toString('utf8'))));
}

describe('ConnectionDispatcher', () => {
  it('hands each connection to a worker unread: the worker reads the request the client sent', async () => {
    const { dispatcher, port } = await start();
    const worker = new Worker(1);
    dispatcher.add(worker);
    const [client] = await Client.open(port, 1);
    client!.socket.write('GET /health HTTP/1.1\r\n\r\n');
    await waitFor(() => worker.got.length === 1, { what: 'the handoff' });
    worker.got[0]!.resume();
    assert.equal(await read(worker.got[0]!), 'GET /health HTTP/1.1\r\n\r\n');
    worker.got[0]!.write('HTTP/1.1 200 OK\r\n\r\n');
    assert.match(await read(client!.socket), /^HTTP\/1.1 200/);
    client!.socket.destroy();
  });

  it('prefers the worker with fewer handoffs under way: a stalled worker takes no more than its share', async () => {
    const { dispatcher, port } = await start({ perTarget: 2 });
    const stalled = Object.assign(new Worker(1), { stalled: true });
    const quick = new Worker(2);
    dispatcher.add(stalled);
    dispatcher.add(quick);
    const clients = await Client.open(port, 20);
    await waitFor(() => stalled.got.length + quick.got.length === 20, { what: 'every handoff' });
    // It got one or two (its share of handoffs under way), then nothing while it did not answer.
    assert.ok(stalled.got.length >= 1 && stalled.got.length <= 2, `the stalled worker got ${stalled.got.length}`);
    assert.equal(quick.got.length, 20 - stalled.got.length);
    for (const c of clients) c.socket.destroy();
  });

  it('every worker stalled: holds at most maxQueued sockets, the oldest closed to take the newest', async () => {
    const { dispatcher, port, shed } = await start({ maxQueued: 10, perTarget: 1 });
    const worker = Object.assign(new Worker(1), { stalled: true });
    dispatcher.add(worker);
    const first = await Client.open(port, 1);
    await waitFor(() => worker.got.length === 1, { what: 'the first handoff' });
    const older = await Client.openInOrder(port, 15);
    await waitFor(() => shed.length === 5, { what: 'five sheds' });
    assert.equal(dispatcher.queued, 10);
    await waitFor(() => older.slice(0, 5).every((c) => c.closed), { what: 'the five oldest closed' });
    assert.deepEqual(new Set(shed), new Set(['queue_full']));
    // The ten newest are still waiting, open.
    assert.ok(older.slice(5).every((c) => !c.closed));

    worker.resume();
    await waitFor(() => worker.got.length === 11, { what: 'the ten queued handed over' });
    assert.equal(dispatcher.queued, 0);
    for (const c of [...first, ...older]) c.socket.destroy();
  });

  it('closes a socket that waited over maxWaitMs instead of handing it over; a fresh one is served', async () => {
    let now = 0;
    const { dispatcher, port, shed } = await start({ maxWaitMs: 3000, perTarget: 1, now: () => now });
    const worker = Object.assign(new Worker(1), { stalled: true });
    dispatcher.add(worker);
    await Client.open(port, 1);
    await waitFor(() => worker.got.length === 1, { what: 'the first handoff' });
    const stale = await Client.open(port, 3);
    await waitFor(() => dispatcher.queued === 3, { what: 'three waiting' });

    // The worker answers 3.5 s later: what waited that long is closed, not handed over.
    now = 3500;
    const [fresh] = await Client.open(port, 1);
    await waitFor(() => dispatcher.queued === 4, { what: 'the fresh one waiting' });
    worker.resume();
    await waitFor(() => worker.got.length === 2, { what: 'the fresh one handed over' });
    await waitFor(() => stale.every((c) => c.closed), { what: 'the stale ones closed' });
    assert.deepEqual(shed, ['waited_too_long', 'waited_too_long', 'waited_too_long']);
    assert.equal(fresh!.closed, false);
    fresh!.socket.destroy();
  });

  it('a worker whose handoff fails takes no more: its socket and the rest go to the others, none closed', async () => {
    const { dispatcher, port, shed } = await start();
    const dying = Object.assign(new Worker(1), { failing: true });
    const worker = new Worker(2);
    dispatcher.add(dying);
    dispatcher.add(worker);
    const clients = await Client.open(port, 10);
    await waitFor(() => worker.got.length === 10, { what: 'every connection at the working one' });
    assert.equal(dying.attempts, 1);
    assert.deepEqual(shed, []);
    assert.ok(clients.every((c) => !c.closed));
  });

  it("remove(): the sockets of a worker's unanswered handoffs are closed", async () => {
    const { dispatcher, port } = await start({ perTarget: 2 });
    const dead = Object.assign(new Worker(1), { stalled: true });
    dispatcher.add(dead);
    const clients = await Client.openInOrder(port, 3);
    await waitFor(() => dead.got.length === 2 && dispatcher.queued === 1, { what: 'two handoffs, one waiting' });
    dispatcher.remove(1);
    await waitFor(() => clients[0]!.closed && clients[1]!.closed, { what: 'the two handed ones closed' });
    // The one still waiting goes to the next worker.
    const next = new Worker(2);
    dispatcher.add(next);
    await waitFor(() => next.got.length === 1, { what: 'the waiting one handed to the next worker' });
    assert.equal(clients[2]!.closed, false);
  });

  it('close(): the waiting sockets are closed and the port refuses new ones', async () => {
    const { dispatcher, port } = await start();
    const waiting = await Client.open(port, 3);
    await waitFor(() => dispatcher.queued === 3, { what: 'three waiting (no worker yet)' });
    dispatcher.close();
    await waitFor(() => waiting.every((c) => c.closed), { what: 'the waiting ones closed' });
    const refused = await new Promise<string>((resolve) => {
      const socket = connect(port, '127.0.0.1');
      socket.once('connect', () => resolve('connected'));
      socket.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? 'error'));
    });
    assert.equal(refused, 'ECONNREFUSED');
  });
});
