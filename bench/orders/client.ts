/**
 * The order-ladder client: a process of its own (pinned by the runner), told over IPC to open
 * one socket per user on `orders`, then to place orders at each rate of a ladder. It checks
 * every order event it receives against the HTTP answers: none lost, none twice, and per user
 * in `seq` order.
 *
 * Messages: runner → `{type:'run', spec}`; client → `{type:'window', rate}` when a step's
 * measured orders start, `{type:'step', step}` once they are all answered and delivered,
 * `{type:'result', result}` at the end (or `{type:'error', message}`).
 */
import { Agent, request } from 'node:http';
import { withTimeout } from '@repo/retry';
import { monoMs, sleep } from '../lib/clock.ts';
import { readUsersFile } from '../servers/sessions.ts';
import { RawWsClient } from '../load/raw-ws-client.ts';
import { summariseOrderStep, type OrderLadderSpec, type OrderStepFigures } from './figures.ts';
import { writeTimeline } from '../diagnostics/order-timeline.ts';

interface Sent {
  user: number;
  at: number;
  /** When the HTTP answer came (monoMs), and its status; 0 while unanswered. */
  answeredAt: number;
  status: number;
  orderId: number;
  seq: number;
}

interface Received {
  at: number;
  seq: number;
  user: number;
}

/** Per-user event bookkeeping across the whole ladder. */
class EventLedger {
  /** Event arrivals by order id. */
  readonly byOrder = new Map<number, Received>();
  readonly lastSeq: number[];
  duplicated = 0;
  outOfOrder = 0;
  wrongUser = 0;

  constructor(users: number) {
    this.lastSeq = new Array<number>(users).fill(0);
  }

  record(user: number, userId: number, event: { userId: number; orderId: number; seq: number }): void {
    if (event.userId !== userId) {
      this.wrongUser++;
      return;
    }
    if (this.byOrder.has(event.orderId)) {
      this.duplicated++;
      return;
    }
    if (event.seq <= this.lastSeq[user]!) this.outOfOrder++;
    else this.lastSeq[user] = event.seq;
    this.byOrder.set(event.orderId, { at: monoMs(), seq: event.seq, user });
  }
}

const READY_TIMEOUT_MS = 20_000;

async function openSocket(
  url: URL,
  token: string,
  onEvent: (text: string) => void,
  onClose: (code: number) => void,
): Promise<RawWsClient> {
  let subscribed = false;
  let resolve: () => void = () => {};
  let reject: (err: Error) => void = () => {};
  const ready = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  ready.catch(() => {});
  const client = await RawWsClient.open(url.hostname, Number(url.port), url.pathname || '/', {
    onText(data, start, end, self) {
      const text = data.toString('utf8', start, end);
      if (subscribed) return onEvent(text);
      const msg = JSON.parse(text) as { type?: string; channel?: string; code?: string };
      if (msg.type === 'auth_ok') self.sendText(JSON.stringify({ type: 'subscribe', channel: 'orders' }));
      else if (msg.type === 'subscribed' && msg.channel === 'orders') {
        subscribed = true;
        resolve();
      } else if (msg.type === 'error') reject(new Error(`socket refused: ${msg.code}`));
    },
    onClose(code) {
      if (!subscribed) reject(new Error(`socket closed (${code}) before it was subscribed`));
      else onClose(code);
    },
  });
  client.sendText(JSON.stringify({ type: 'auth', token }));
  await withTimeout(ready, READY_TIMEOUT_MS, 'subscribe orders').catch((err: Error) => {
    client.destroy();
    throw err;
  });
  return client;
}

export interface LadderHooks {
  /** The measured orders of a step start (the runner starts its CPU readings). */
  windowStart(rate: number): Promise<void>;
  /** A step's orders are all answered and their events in (or the drain timed out). */
  stepDone(step: OrderStepFigures): Promise<void>;
}

export async function runOrderLadder(spec: OrderLadderSpec, hooks: LadderHooks): Promise<OrderStepFigures[]> {
  const users = readUsersFile(spec.usersFile, spec.users);
  const ledger = new EventLedger(users.length);
  let dropped = 0;
  let closing = false;
  const wsUrls = spec.wsUrls.map((u) => new URL(u));
  const sockets: RawWsClient[] = [];
  let next = 0;
  const opener = async () => {
    while (next < users.length) {
      const i = next++;
      const user = users[i]!;
      // A busy server (the embedded mode on a loaded machine) may time an upgrade out: a
      // real client retries, and so does this one, a few times.
      for (let attempt = 1; ; attempt++) {
        try {
          const socket = await openSocket(
            wsUrls[i % wsUrls.length]!,
            user.token,
            (text) => {
              // Only order events matter here; portfolio updates share the channel.
              if (!text.includes('"order_')) return;
              const msg = JSON.parse(text) as { type: string; userId: number; orderId: number; seq: number };
              if (msg.type === 'order_filled' || msg.type === 'order_rejected') ledger.record(i, user.userId, msg);
            },
            () => {
              if (!closing) dropped++;
            },
          );
          sockets.push(socket);
          break;
        } catch (err) {
          if (attempt === 4) throw err;
          await sleep(500 * attempt);
        }
      }
    }
  };
  await Promise.all(Array.from({ length: 20 }, opener));

  const apis = spec.apiUrls.map((u) => new URL(u));
  const agent = new Agent({ keepAlive: true, maxSockets: spec.httpConnections });
  const body = JSON.stringify({ symbol: spec.symbol, side: 'buy', size: spec.size });
  const steps: OrderStepFigures[] = [];
  try {
    for (const rate of spec.rates) {
      const sent: Sent[] = [];
      const errors: Record<string, number> = {};
      let inFlight = 0;
      const post = (user: number, measured: boolean) => {
        inFlight++;
        const record: Sent = { user, at: monoMs(), answeredAt: 0, status: 0, orderId: 0, seq: 0 };
        if (measured) sent.push(record);
        const api = apis[user % apis.length]!;
        const req = request(
          {
            agent,
            host: api.hostname,
            port: api.port,
            path: '/orders',
            method: 'POST',
            headers: {
              'content-type': 'application/json',
              'content-length': Buffer.byteLength(body),
              authorization: `Bearer ${users[user]!.token}`,
            },
          },
          (res) => {
            const chunks: Buffer[] = [];
            res.on('data', (c: Buffer) => chunks.push(c));
            res.on('end', () => {
              inFlight--;
              record.answeredAt = monoMs();
              record.status = res.statusCode ?? 0;
              if (record.status === 201 || record.status === 422) {
                const answer = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { orderId: number; seq: number };
                record.orderId = answer.orderId;
                record.seq = answer.seq;
              }
              if (record.status !== 201) {
                const kind = `HTTP ${record.status}`;
                errors[kind] = (errors[kind] ?? 0) + 1;
              }
            });
          },
        );
        req.on('error', (err) => {
          inFlight--;
          record.answeredAt = monoMs();
          errors[err.message] = (errors[err.message] ?? 0) + 1;
        });
        req.end(body);
      };

      const warmup = Math.round(rate * spec.warmupS);
      const measured = Math.round(rate * spec.measureS);
      const total = warmup + measured;
      const intervalMs = 1000 / rate;
      let windowStart = 0;
      const start = monoMs();
      let n = 0;
      let user = next % users.length;
      while (n < total) {
        const elapsed = monoMs() - start;
        while (n < total && n * intervalMs <= elapsed) {
          if (n === warmup) {
            windowStart = monoMs();
            await hooks.windowStart(rate);
          }
          post(user, n >= warmup);
          user = (user + 1) % users.length;
          n++;
        }
        if (n < total) await sleep(Math.max(0, n * intervalMs - (monoMs() - start)));
      }
      const sendSeconds = (monoMs() - windowStart) / 1000;
      next = user;
      // Every order answered and its event in, or the drain timeout.
      const deadline = monoMs() + spec.drainTimeoutMs;
      const pending = () => sent.some((s) => s.answeredAt === 0 || (s.orderId > 0 && !ledger.byOrder.has(s.orderId)));
      while ((inFlight > 0 || pending()) && monoMs() < deadline) await sleep(20);
      const figures = summariseOrderStep(rate, sendSeconds, sent, ledger.byOrder, errors);
      if (process.env.BENCH_ORDER_TIMELINE) writeTimeline(process.env.BENCH_ORDER_TIMELINE, rate, sent, ledger.byOrder);
      figures.duplicated = ledger.duplicated;
      figures.outOfOrder = ledger.outOfOrder;
      figures.wrongUser = ledger.wrongUser;
      figures.socketsDropped = dropped;
      steps.push(figures);
      await hooks.stepDone(figures);
      if (spec.stopPastP99Ms !== undefined && !(figures.e2eP99 !== null && figures.e2eP99 < spec.stopPastP99Ms)) break;
      // Between steps: let the relay and the database settle.
      await sleep(1000);
    }
  } finally {
    closing = true;
    agent.destroy();
    for (const socket of sockets) socket.destroy();
  }
  return steps;
}

function send(message: unknown): Promise<void> {
  return new Promise((resolve) => {
    if (!process.send) return resolve();
    process.send(message, undefined, {}, () => resolve());
  });
}

process.on('message', (raw: unknown) => {
  const message = raw as { type: string; spec?: OrderLadderSpec };
  if (message.type !== 'run' || !message.spec) return;
  const hooks: LadderHooks = {
    windowStart: (rate) => send({ type: 'window', rate }),
    stepDone: (step) => send({ type: 'step', step }),
  };
  runOrderLadder(message.spec, hooks).then(
    async (result) => {
      await send({ type: 'result', result });
      process.exit(0);
    },
    async (err: unknown) => {
      await send({ type: 'error', message: err instanceof Error ? (err.stack ?? err.message) : String(err) });
      process.exit(1);
    },
  );
});
process.on('disconnect', () => process.exit(2));
