/**
 * Baseline 2: Socket.IO 4 with `@socket.io/redis-adapter`, the usual off-the-shelf answer.
 * Events come in through `@socket.io/redis-emitter` (the load generator publishes with it),
 * so the adapter, not our code, does the fan-out: rooms `prices` and `user:<id>`.
 *
 * Client events mirror the gateway's messages: `auth` (token) and `subscribe` (channel), each
 * acknowledged. WebSocket transport only, no compression (the Socket.IO default).
 */
import { createServer } from 'node:http';
import { createAdapter } from '@socket.io/redis-adapter';
import { createClient } from 'redis';
import { Server, type DefaultEventsMap } from 'socket.io';
import { serverArgs } from './args.ts';
import { serveControl } from './control.ts';
import { openSessionVerifier } from './sessions.ts';

const args = serverArgs();
const sessions = await openSessionVerifier(args);
const pub = createClient({ url: args.redisUrl });
const sub = pub.duplicate();
pub.on('error', () => {});
sub.on('error', () => {});
await Promise.all([pub.connect(), sub.connect()]);

const httpServer = createServer();
/** What the server keeps on each socket: the user once `auth` succeeded. */
interface SocketData {
  userId?: number;
}

const io = new Server<DefaultEventsMap, DefaultEventsMap, DefaultEventsMap, SocketData>(httpServer, {
  transports: ['websocket'],
  serveClient: false,
  adapter: createAdapter(pub, sub),
});

type Ack = (reply: { ok: boolean; userId?: number; code?: string }) => void;

io.on('connection', (socket) => {
  socket.on('auth', async (token: unknown, ack: Ack) => {
    const session = typeof token === 'string' ? await sessions.verifier.verify(token) : null;
    if (!session) return ack?.({ ok: false, code: 'auth_failed' });
    socket.data.userId = session.userId;
    ack?.({ ok: true, userId: session.userId });
  });
  socket.on('subscribe', (channel: unknown, ack: Ack) => {
    if (channel === 'prices') void socket.join('prices');
    else if (channel === 'orders' && typeof socket.data.userId === 'number')
      void socket.join(`user:${socket.data.userId}`);
    else return ack?.({ ok: false, code: 'unknown_channel' });
    ack?.({ ok: true });
  });
});

await new Promise<void>((resolve) => httpServer.listen(0, '127.0.0.1', resolve));
const address = httpServer.address();
serveControl(typeof address === 'object' && address ? address.port : 0, async () => {
  io.disconnectSockets(true);
  // The callback, unlike the returned promise, waits for the HTTP server to close.
  await new Promise<void>((resolve, reject) => {
    io.close(() => resolve()).catch(reject);
  });
  await Promise.allSettled([pub.quit(), sub.quit(), sessions.close()]);
});
