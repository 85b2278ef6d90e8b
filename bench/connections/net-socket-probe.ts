/**
 * Diagnosis only: what Node's bare TCP socket costs on this machine, the yardstick for the
 * gateway's native part (memory-probe.ts). A plain `net` server holds idle accepted sockets
 * (no `ws`, no gateway; one shared `error` listener each) and is read the way the gateway is:
 * at 0 sockets and after each batch, after two full collections, RSS beside V8's heap.
 *   npx tsx bench/connections/net-socket-probe.ts [sockets=18000] [steps=4] [repetitions=3]
 *
 * Each repetition forks a fresh server process (this file with `server`); the clients are
 * opened from this process, so their memory is not the server's.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createConnection, createServer, type Socket } from 'node:net';
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { sleep } from '../lib/clock.ts';
import { ROOT } from '../lib/processes.ts';
import { fitLines, fitPoints, pointLine, summaryLines, type Fits, type Point } from './memory-fit.ts';
import { collectAndRead, settledReading } from './memory-reading.ts';

type ToServer = { type: 'read'; sockets: number };
type FromServer =
  { type: 'listening'; port: number } | ({ type: 'reading' } & Awaited<ReturnType<typeof settledReading>>);

/** Connects in flight at once while a batch opens. */
const OPEN_CONCURRENCY = 256;
/**
 * The clients' source address: a loopback address of their own, so their ports do not come out
 * of the ephemeral range that other processes on 127.0.0.1 share (~28,000 ports: a third
 * repetition beside a gateway probe ran out, EADDRNOTAVAIL).
 */
const CLIENT_ADDRESS = '127.0.9.1';

if (process.argv[2] === 'server') runServer();
else await runProbe();

function runServer(): void {
  const held: Socket[] = [];
  const ignore = () => {};
  const server = createServer((socket) => {
    socket.on('error', ignore);
    held.push(socket);
  });
  const send = (message: FromServer) => process.send!(message);
  server.listen(0, '127.0.0.1', 5000, () => {
    const address = server.address();
    if (address === null || typeof address === 'string') throw new Error('no TCP address');
    send({ type: 'listening', port: address.port });
  });
  process.on('message', (message: ToServer) => {
    void (async () => {
      // Every client connected does not yet mean every socket accepted.
      while (held.length < message.sockets) await sleep(50);
      send({ type: 'reading', ...(await settledReading(() => collectAndRead())) });
    })();
  });
  process.on('disconnect', () => process.exit(0));
}

async function runProbe(): Promise<void> {
  const n = Number(process.argv[2] ?? 18_000);
  const steps = Number(process.argv[3] ?? 4);
  const repetitions = Number(process.argv[4] ?? 3);
  const batch = Math.floor(n / steps);
  console.log(`net socket probe: ${repetitions} × (0 and ${steps} batches of ${batch} sockets), one server process`);
  const reps: Fits[] = [];
  for (let i = 1; i <= repetitions; i++) {
    const server = fork(fileURLToPath(import.meta.url), ['server'], { cwd: ROOT, execArgv: ['--import', 'tsx'] });
    const clients: Socket[] = [];
    const points: Point[] = [];
    try {
      const { port } = await next(server, 'listening');
      const read = async (sockets: number) => {
        server.send({ type: 'read', sockets } satisfies ToServer);
        const { reading, settled, history } = await next(server, 'reading');
        const point = { sockets, reading, history, settled, loadAverage: loadavg()[0]! };
        points.push(point);
        console.log(pointLine(`#${i}`, point));
      };
      await read(0);
      for (let step = 0; step < steps; step++) {
        clients.push(...(await openClients(port, batch)));
        await read(clients.length);
      }
    } finally {
      // The server goes first, so the TIME_WAITs are on its side, not on this process's ports.
      const exited = once(server, 'exit');
      server.kill('SIGKILL');
      await exited;
      for (const client of clients) client.destroy();
    }
    const fits = fitPoints(points);
    for (const line of fitLines(`#${i}`, fits)) console.log(line);
    reps.push(fits);
  }
  console.log('\nper socket, each repetition and the median (slope over every point | from the first batch on):');
  for (const line of summaryLines(reps)) console.log(line);
  process.exit(0);
}

async function openClients(port: number, count: number): Promise<Socket[]> {
  const sockets: Socket[] = [];
  let started = 0;
  const worker = async () => {
    while (started < count) {
      started += 1;
      const socket = createConnection({ port, host: '127.0.0.1', localAddress: CLIENT_ADDRESS });
      socket.on('error', () => {});
      await once(socket, 'connect');
      sockets.push(socket);
    }
  };
  await Promise.all(Array.from({ length: OPEN_CONCURRENCY }, worker));
  return sockets;
}

function next<T extends FromServer['type']>(child: ChildProcess, type: T): Promise<Extract<FromServer, { type: T }>> {
  return new Promise((resolve, reject) => {
    const onMessage = (message: FromServer) => {
      if (message.type !== type) return;
      child.off('message', onMessage);
      child.off('exit', onExit);
      resolve(message as Extract<FromServer, { type: T }>);
    };
    const onExit = (code: number | null) => reject(new Error(`the server process exited (${code})`));
    child.on('message', onMessage);
    child.once('exit', onExit);
  });
}
