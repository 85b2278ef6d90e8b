/**
 * Baseline 1: the design's gateway written literally (event-system-architecture.md, steps 3
 * and 4). A `redis.duplicate()` subscriber, `JSON.parse` of each Redis message, and a broadcast
 * that walks `wss.clients` and calls `JSON.stringify` once per client. Private events find the
 * user's sockets the same way, by scanning every socket. It speaks the same client protocol as
 * the gateway (auth, subscribe, their replies) so the same load generator drives it.
 *
 * Deliberately no limits, heartbeat, validation or metrics: it is the floor the design's
 * sketch gives, not a server to copy.
 */
import { createServer } from 'node:http';
import { createClient } from 'redis';
import { WebSocketServer, WebSocket, type RawData } from 'ws';
import { redisKeys } from '@repo/redis';
import { serverArgs } from './args.ts';
import { serveControl } from './control.ts';
import { openSessionVerifier } from './sessions.ts';

interface AuthenticatedWebSocket extends WebSocket {
  subscriptions: Set<string>;
  userId?: number;
}

const args = serverArgs();
const sessions = await openSessionVerifier(args);
const redis = createClient({ url: args.redisUrl });
redis.on('error', () => {});
await redis.connect();

const server = createServer();
const wss = new WebSocketServer({ server });

wss.on('connection', (socket) => {
  const ws = socket as AuthenticatedWebSocket;
  ws.subscriptions = new Set();
  ws.on('message', (raw) => {
    handleMessage(ws, raw).catch((err: unknown) => {
      process.stderr.write(`naive server: message failed: ${String(err)}\n`);
    });
  });
});

async function handleMessage(ws: AuthenticatedWebSocket, raw: RawData): Promise<void> {
  const text = (Buffer.isBuffer(raw) ? raw : Array.isArray(raw) ? Buffer.concat(raw) : Buffer.from(raw)).toString();
  const msg = JSON.parse(text) as { type: string; channel?: string; token?: string };
  if (msg.type === 'auth' && typeof msg.token === 'string') {
    const session = await sessions.verifier.verify(msg.token);
    if (!session) return ws.send(JSON.stringify({ type: 'error', code: 'auth_failed', message: 'invalid token' }));
    ws.userId = session.userId;
    ws.send(JSON.stringify({ type: 'auth_ok', userId: session.userId }));
  } else if (msg.type === 'subscribe' && msg.channel) {
    ws.subscriptions.add(msg.channel);
    ws.send(JSON.stringify({ type: 'subscribed', channel: msg.channel }));
  }
}

// Step 4 of the design, as written.
function broadcastPrice(symbol: string, price: string, timestamp: string): void {
  wss.clients.forEach((client) => {
    const ws = client as AuthenticatedWebSocket;
    if (ws.readyState === WebSocket.OPEN && ws.subscriptions.has('prices')) {
      ws.send(JSON.stringify({ type: 'price', symbol, price, timestamp }));
    }
  });
}

function sendOrderFilled(event: { userId: number }): void {
  wss.clients.forEach((client) => {
    const ws = client as AuthenticatedWebSocket;
    if (ws.readyState === WebSocket.OPEN && ws.userId === event.userId && ws.subscriptions.has('orders')) {
      ws.send(JSON.stringify({ type: 'order_filled', ...event }));
    }
  });
}

// Step 3 of the design, as written.
const subscriber = redis.duplicate();
subscriber.on('error', () => {});
await subscriber.connect();
await subscriber.subscribe(redisKeys.CHANNELS.priceUpdate(), (message) => {
  const event = JSON.parse(message) as { symbol: string; price: string; timestamp: string };
  broadcastPrice(event.symbol, event.price, event.timestamp);
});
await subscriber.subscribe(redisKeys.CHANNELS.orderFilled(), (message) => {
  sendOrderFilled(JSON.parse(message) as { userId: number });
});

await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
const address = server.address();
serveControl(typeof address === 'object' && address ? address.port : 0, async () => {
  for (const client of wss.clients) client.terminate();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  await Promise.allSettled([subscriber.quit(), redis.quit(), sessions.close()]);
});
