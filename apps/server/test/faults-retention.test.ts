import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { freePort, TradewireProcess, waitFor, TestClient } from '@repo/test-support';
import { assertClean, OrderBurst, registerUsers, settleAndCount, WatchingClient } from './fault-harness.ts';

/**
 * Order replay in the all-in-one mode (embedded PGlite, in-process broker) with a tiny retention:
 * a client that comes back within the retention recovers every event; one that comes back
 * after it gets `recovered:false`, emits `resync`, and its REST reload holds every order.
 */
describe('retention in the all-in-one mode', () => {
  let proc: TradewireProcess;
  let api: string;
  let ws: string;
  let dataDir: string;
  const watchers: WatchingClient[] = [];

  before(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'tradewire-retention-'));
    proc = new TradewireProcess([], {
      PORT: String(await freePort()),
      WS_PORT: String(await freePort()),
      DATA_DIR: dataDir,
      PRICE_INTERVAL_MS: '200',
      REDIS_URL: '',
      DATABASE_URL: '',
      HISTORY_RETENTION_EVENTS: '3',
      // Long enough for the stayer to come back on a loaded machine, short enough to wait out.
      HISTORY_RETENTION_SECONDS: '5',
    });
    const ready = await proc.ready;
    api = ready.api!;
    ws = ready.ws!;
  });

  after(async () => {
    for (const w of watchers) w.close();
    await proc?.stop('SIGKILL');
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('recovers a client back within the retention; resyncs one back after it with a complete reload', async () => {
    const users = await registerUsers(api, 2, 'ret');
    const [stayer, leaver] = users.map((user) => new WatchingClient(user, () => [ws])) as [
      WatchingClient,
      WatchingClient,
    ];
    watchers.push(stayer, leaver);
    leaver.reloadFrom = () => api;
    await Promise.all([stayer.start(), leaver.start()]);

    const burst = new OrderBurst(() => api, users);
    await burst.reach(10);
    leaver.away = true;
    leaver.cut();
    stayer.cut(); // back at once: well within the 5 s retention
    await burst.reach(60);
    await burst.stop();
    const position = leaver.delivered.at(-1) ?? 0;

    // The history no longer reaches the leaver's position once the relay pruned it.
    await waitFor(
      async () => {
        const probe = await TestClient.connect(ws);
        try {
          await probe.request({ type: 'auth', token: leaver.user.token });
          const reply = await probe.request({ type: 'subscribe', channel: 'orders', since: position });
          return reply.type === 'subscribed' && reply.recovered === false;
        } finally {
          void probe.close();
        }
      },
      { timeoutMs: 30_000, intervalMs: 200, what: 'the history to be pruned past the leaver' },
    );
    leaver.away = false;
    await waitFor(() => leaver.resyncs > 0, { timeoutMs: 10_000, what: 'resync' });
    await leaver.reloadsDone();

    const expected = new Map([...burst.answered].map(([userId, seqs]) => [userId, [...seqs].sort((a, b) => a - b)]));
    assertClean(await settleAndCount('all-in-one, back within retention', [stayer], expected));

    const answered = expected.get(leaver.user.userId)!;
    const seen = new Set([...leaver.delivered, ...leaver.reloaded]);
    const figures = {
      fault: 'all-in-one, back after retention',
      ordersCommitted: answered.length,
      deliveredBeforeLeaving: leaver.delivered.filter((s) => s <= position).length,
      resyncs: leaver.resyncs,
      reloadedOverRest: leaver.reloaded.length,
      missingAfterReload: answered.filter((s) => !seen.has(s)).length,
      duplicated: leaver.delivered.length - new Set(leaver.delivered).size,
    };
    console.log(`[fault figures] ${JSON.stringify(figures)}`);
    assert.equal(leaver.resyncs, 1);
    assert.deepEqual(leaver.reloaded, answered, 'the REST reload lists every committed order');
    assert.equal(leaver.reloadedSeq, answered.at(-1));
    assert.equal(figures.missingAfterReload, 0);
    assert.equal(figures.duplicated, 0);
  });
});
