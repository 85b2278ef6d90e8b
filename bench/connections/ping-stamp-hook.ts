/**
 * Diagnosis only, never loaded by the product: preloaded into every process of the gateway node
 * by the connections benchmark (`--import ping-stamp-hook.ts`, after tsx's loader). The
 * heartbeat's pings go out empty; here each carries the time it was sent (8 bytes:
 * CLOCK_MONOTONIC in µs, one clock for every process on the machine), so a load client can tell
 * how late a ping reached it from how late it answered.
 */
import { WebSocket } from 'ws';

// Called with `this` bound below: the prototype's own method, kept to call on.
// eslint-disable-next-line @typescript-eslint/unbound-method
const ping = WebSocket.prototype.ping;
WebSocket.prototype.ping = function stampedPing(
  this: WebSocket,
  data?: unknown,
  mask?: boolean,
  cb?: (err: Error) => void,
) {
  if (data === undefined) {
    const stamp = Buffer.allocUnsafe(8);
    stamp.writeBigUInt64BE(process.hrtime.bigint() / 1000n);
    data = stamp;
  }
  ping.call(this, data, mask, cb);
};
