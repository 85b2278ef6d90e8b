import { Agent, request } from 'node:http';
import { monoMs, sleep } from '../lib/clock.ts';
import { msOrNull, summariseLatencies } from '../lib/stats.ts';
import type { EndToEndResult } from '../lib/results.ts';
import { readUsersFile } from '../servers/sessions.ts';
import { openFleet, type TargetServer } from './fleet.ts';
import { SelfWatch, type GeneratorHealth } from './self-watch.ts';

export interface EndToEndSpec {
  scenario: 'e2e';
  /** Base URL of the API (`http://127.0.0.1:port`). */
  apiUrl: string;
  target: TargetServer;
  usersFile: string;
  users: number;
  rate: number;
  warmupS: number;
  measureS: number;
}

/** The figures the runner records, and how busy the generator was while measuring them. */
export interface EndToEndClientResult extends EndToEndResult {
  generator: GeneratorHealth;
}

/**
 * POST /orders → `order_filled` at the user's socket. Users take turns (round robin), so a
 * user's orders are seconds apart and each fill answers the user's one outstanding order:
 * the fill is matched to the send time of that user's oldest unanswered order, whether it
 * arrives before or after the HTTP response.
 */
export async function runEndToEnd(spec: EndToEndSpec): Promise<EndToEndClientResult> {
  const users = readUsersFile(spec.usersFile, spec.users);
  const sent = users.map(() => [] as { at: number; measured: boolean }[]);
  const warmupOrders = Math.round(spec.rate * spec.warmupS);
  const measuredOrders = Math.round(spec.rate * spec.measureS);
  const samples = new Float64Array(measuredOrders);
  let sampleCount = 0;
  const httpSamples = new Float64Array(measuredOrders);
  let httpCount = 0;
  let wrongUser = 0;
  let fills = 0;
  const httpErrors: Record<string, number> = {};
  let closing = false;
  let disconnected = 0;

  const fleet = await openFleet(spec.target, {
    count: users.length,
    channel: 'orders',
    tokens: users.map((u) => u.token),
    inbox: {
      onPrice() {},
      onOrder(client, event) {
        const user = users[client]!;
        if (event.userId !== user.userId) {
          wrongUser++;
          return;
        }
        fills++;
        const order = sent[client]!.shift();
        if (order?.measured && sampleCount < samples.length) samples[sampleCount++] = monoMs() - order.at;
      },
      onClose() {
        if (!closing) disconnected++;
      },
    },
  });

  const agent = new Agent({ keepAlive: true, maxSockets: 64 });
  const api = new URL(spec.apiUrl);
  const body = JSON.stringify({ symbol: 'SOL', side: 'buy', size: '0.01' });
  let inFlight = 0;
  const post = (client: number, measured: boolean) => {
    inFlight++;
    const record = { at: monoMs(), measured };
    sent[client]!.push(record);
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
          authorization: `Bearer ${users[client]!.token}`,
        },
      },
      (res) => {
        res.resume();
        res.on('end', () => {
          inFlight--;
          if (measured && res.statusCode === 201 && httpCount < httpSamples.length)
            httpSamples[httpCount++] = monoMs() - record.at;
          if (res.statusCode !== 201) {
            httpErrors[String(res.statusCode)] = (httpErrors[String(res.statusCode)] ?? 0) + 1;
            // No fill will come for it.
            const queue = sent[client]!;
            const at = queue.indexOf(record);
            if (at !== -1) queue.splice(at, 1);
          }
        });
      },
    );
    req.on('error', (err) => {
      inFlight--;
      httpErrors[err.message] = (httpErrors[err.message] ?? 0) + 1;
    });
    req.end(body);
  };

  const watch = new SelfWatch();
  try {
    const total = warmupOrders + measuredOrders;
    const intervalMs = 1000 / spec.rate;
    const start = monoMs();
    let n = 0;
    while (n < total) {
      const elapsed = monoMs() - start;
      while (n < total && n * intervalMs <= elapsed) {
        if (n === warmupOrders) watch.start();
        post(n % users.length, n >= warmupOrders);
        n++;
      }
      if (n < total) await sleep(Math.max(0, n * intervalMs - (monoMs() - start)));
    }
    // Every order answered and every fill in, or 15 s.
    const deadline = monoMs() + 15_000;
    while ((inFlight > 0 || sent.some((q) => q.length > 0)) && monoMs() < deadline) await sleep(20);
    const generator = watch.stop();
    const errors = Object.values(httpErrors).reduce((a, b) => a + b, 0);
    const summary = summariseLatencies(samples, sampleCount, measuredOrders - errors);
    const http = summariseLatencies(httpSamples, httpCount, httpCount);
    return {
      rate: spec.rate,
      orders: total,
      p50: msOrNull(summary.p50),
      p99: msOrNull(summary.p99),
      max: msOrNull(summary.max),
      delivered: fills,
      httpP50: msOrNull(http.p50),
      httpP99: msOrNull(http.p99),
      httpErrors: disconnected > 0 ? { ...httpErrors, 'sockets dropped': disconnected } : httpErrors,
      wrongUser,
      generator,
    };
  } finally {
    closing = true;
    agent.destroy();
    await fleet.close();
  }
}
