import { Registry } from 'prom-client';
import type { ClientOptions } from 'ws';
import { MemoryBroker, type Broker } from '@repo/broker';
import { createGateway, type Gateway, type GatewayOptions, type Session, type SessionVerifier } from '../src/index.ts';
import { TestClient } from '@repo/test-support';
import { metricValue } from './metric-value.ts';

/** A session verifier the test controls: tokens map to sessions; `hold()` delays answers. */
export class StubSessions implements SessionVerifier {
  readonly tokens = new Map<string, Session>();
  #held: (() => void)[] | null = null;
  fail = false;

  /** Verifications waiting for `release()`. */
  get waiting(): number {
    return this.#held?.length ?? 0;
  }

  /** Registers `token` for `userId` with session id `sessionId` (default `s-<token>`). */
  add(token: string, userId: number, extra: Partial<Session> = {}): Session {
    const session = { userId, sessionId: `s-${token}`, ...extra };
    this.tokens.set(token, session);
    return session;
  }

  /** Until `release()`, verifications wait. */
  hold(): void {
    this.#held ??= [];
  }

  release(): void {
    const held = this.#held ?? [];
    this.#held = null;
    for (const go of held) go();
  }

  async verify(token: string): Promise<Session | null> {
    if (this.#held) await new Promise<void>((resolve) => this.#held!.push(resolve));
    if (this.fail) throw new Error('database unavailable');
    return this.tokens.get(token) ?? null;
  }
}

export interface GatewayFixture {
  gateway: Gateway;
  broker: Broker;
  sessions: StubSessions;
  registry: Registry;
  url: string;
  port: number;
  /** Opens a client to this gateway. */
  connect(options?: ClientOptions): Promise<TestClient>;
  /** Opens a client and authenticates it with a fresh token for `userId`. */
  connectAs(userId: number, extra?: Partial<Session>): Promise<{ client: TestClient; session: Session; token: string }>;
  /** Sum of a metric's values whose labels include `labels`. */
  metric(name: string, labels?: Record<string, string>): Promise<number>;
  /** Closes clients, the gateway, and the broker when the fixture created it. */
  close(): Promise<void>;
}

let tokenCounter = 0;

/** Starts a gateway on a free port, on a MemoryBroker unless one is given. */
export async function startGateway(
  options: Partial<Omit<GatewayOptions, 'sessions'>> & { sessions?: StubSessions } = {},
): Promise<GatewayFixture> {
  const ownBroker = options.broker === undefined;
  const broker = options.broker ?? new MemoryBroker();
  const sessions = options.sessions ?? new StubSessions();
  const registry = options.registry ?? new Registry();
  const gateway = await createGateway({ ...options, broker, sessions, registry });
  const port = await gateway.listen(0, '127.0.0.1');
  const url = `ws://127.0.0.1:${port}`;
  const clients: TestClient[] = [];
  const fixture: GatewayFixture = {
    gateway,
    broker,
    sessions,
    registry,
    url,
    port,
    async connect(clientOptions) {
      const client = await TestClient.connect(url, clientOptions);
      clients.push(client);
      return client;
    },
    async connectAs(userId, extra) {
      const token = `tok-${(tokenCounter += 1)}`;
      const session = sessions.add(token, userId, extra);
      const client = await fixture.connect();
      const reply = await client.request({ type: 'auth', token });
      if (reply.type !== 'auth_ok') throw new Error(`auth failed: ${JSON.stringify(reply)}`);
      client.skipReceived();
      return { client, session, token };
    },
    metric: (name, labels = {}) => metricValue(registry, name, labels),
    async close() {
      for (const client of clients) client.ws.terminate();
      await gateway.close();
      if (ownBroker) await broker.close();
    },
  };
  return fixture;
}
