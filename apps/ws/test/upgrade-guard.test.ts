import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { PassThrough } from 'node:stream';
import { describe, it } from 'node:test';
import { silentLogger } from '@repo/log';
import type { AdmissionLedger, Reservation } from '../src/connection-ledger.ts';
import { defaultLimits } from '../src/limits.ts';
import { UpgradeGuard } from '../src/upgrade-guard.ts';

/** An upgrade request from `address`, and the socket its refusal would be written to. */
function upgrade(address: string): { req: IncomingMessage; socket: PassThrough; written: () => string } {
  const socket = new PassThrough();
  const chunks: Buffer[] = [];
  socket.on('data', (chunk: Buffer) => chunks.push(chunk));
  const req = { headers: {}, socket: { remoteAddress: address } } as unknown as IncomingMessage;
  return { req, socket, written: () => Buffer.concat(chunks).toString('latin1') };
}

/** A ledger like the node's primary: every reservation waits until the test answers it. */
function slowLedger(): AdmissionLedger & { asked: number; answerAll(reservation: Reservation): void } {
  let waiting: ((reservation: Reservation) => void)[] = [];
  return {
    asked: 0,
    reserve() {
      this.asked += 1;
      return new Promise<Reservation>((resolve) => waiting.push(resolve));
    },
    release() {},
    answerAll(reservation) {
      const all = waiting;
      waiting = [];
      for (const resolve of all) resolve(reservation);
    },
  };
}

describe('UpgradeGuard', () => {
  it('refuses with 503 and Retry-After, without asking the primary, while too many reservations wait', async () => {
    const ledger = slowLedger();
    const guard = new UpgradeGuard({
      limits: defaultLimits(),
      allowedOrigins: null,
      exempt: [],
      clientAddress: (request) => request.socket.remoteAddress,
      ledger,
      logger: silentLogger,
      maxPendingReservations: 3,
    });
    const admissions = [1, 2, 3].map((i) => {
      const { req, socket } = upgrade(`10.0.0.${i}`);
      return guard.admit(req, socket, false);
    });
    assert.ok(admissions.every((a) => a instanceof Promise));

    const busy = upgrade('10.0.0.9');
    assert.equal(guard.admit(busy.req, busy.socket, false), null);
    assert.equal(ledger.asked, 3, 'the refused upgrade cost no reservation');
    await new Promise((resolve) => setImmediate(resolve));
    assert.match(busy.written(), /^HTTP\/1\.1 503 /);
    assert.match(busy.written(), /\r\nRetry-After: \d+\r\n/);

    // Once the primary answered, there is room again.
    ledger.answerAll({ ok: true });
    assert.ok((await Promise.all(admissions)).every((a) => a !== null));
    const later = upgrade('10.0.0.10');
    assert.ok(guard.admit(later.req, later.socket, false) instanceof Promise);
    assert.equal(ledger.asked, 4);
  });

  it('never refuses for that reason with a ledger of its own process', () => {
    let reserved = 0;
    const guard = new UpgradeGuard({
      limits: defaultLimits(),
      allowedOrigins: null,
      exempt: [],
      clientAddress: (request) => request.socket.remoteAddress,
      ledger: {
        reserve: () => {
          reserved += 1;
          return { ok: true };
        },
        release() {},
      },
      logger: silentLogger,
      maxPendingReservations: 1,
    });
    for (let i = 0; i < 5; i++) {
      const { req, socket } = upgrade(`10.0.1.${i}`);
      assert.notEqual(guard.admit(req, socket, false), null);
    }
    assert.equal(reserved, 5);
  });
});
