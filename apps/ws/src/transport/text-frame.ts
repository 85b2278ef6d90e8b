import type { Duplex } from 'node:stream';

/**
 * Encodes `json` as one complete, unmasked, unfragmented WebSocket text frame (RFC 6455 §5.2):
 * header and payload in a single Buffer.
 *
 * Why not `ws.send()` per recipient: it re-encodes the string to UTF-8 and builds a new header
 * for every socket, then issues two writes. A fan-out to N sockets encodes once here and
 * writes the same Buffer N times; the Buffer is never mutated afterwards, so sharing it
 * between sockets' write queues is safe. Server frames are never masked, and the gateway
 * runs with permessage-deflate off, so this is exactly what `ws` itself would put on the wire.
 */
export function encodeTextFrame(json: string): Buffer {
  const length = Buffer.byteLength(json);
  const headerLength = length < 126 ? 2 : length < 65_536 ? 4 : 10;
  const frame = Buffer.allocUnsafe(headerLength + length);
  frame[0] = 0x81; // FIN + opcode 1 (text)
  if (length < 126) {
    frame[1] = length;
  } else if (length < 65_536) {
    frame[1] = 126;
    frame.writeUInt16BE(length, 2);
  } else {
    frame[1] = 127;
    frame.writeUInt32BE(0, 2);
    frame.writeUInt32BE(length, 6);
  }
  frame.write(json, headerLength, 'utf8');
  return frame;
}

/**
 * Batches each socket's writes within one tick: the first write to a socket in a tick corks
 * it, and one `process.nextTick` uncorks every socket written to. When Redis hands over many
 * events in one read (a burst), each socket then gets one `writev` for all of them instead of
 * one syscall per event; for a lone event the cost is the same single syscall, a tick later.
 *
 * A socket is known to be corked by its own `writableCorked` count: `ws` corks the socket only
 * within a single synchronous call (a ping or close frame), so between two of our writes the
 * count is ours alone.
 */
export class WriteBatcher {
  #corked: Duplex[] = [];
  #scheduled = false;
  readonly #flush = () => {
    const corked = this.#corked;
    this.#corked = [];
    this.#scheduled = false;
    // A socket destroyed meanwhile ignores uncork.
    for (const socket of corked) socket.uncork();
  };

  /** Writes `frame` to `socket`, corking it until the end of the tick. */
  write(socket: Duplex, frame: Buffer): void {
    if (socket.writableCorked === 0) {
      socket.cork();
      this.#corked.push(socket);
      if (!this.#scheduled) {
        this.#scheduled = true;
        process.nextTick(this.#flush);
      }
    }
    socket.write(frame);
  }
}
