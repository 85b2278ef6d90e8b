import { createHash, randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';

const WS_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
const OP_CONTINUATION = 0x0;
const OP_TEXT = 0x1;
const OP_BINARY = 0x2;
const OP_CLOSE = 0x8;
const OP_PING = 0x9;
const OP_PONG = 0xa;
/** A masked, empty pong frame (the gateway's pings carry no payload); never mutated, so shared. */
const EMPTY_PONG = Buffer.from([0x80 | OP_PONG, 0x80, 0, 0, 0, 0]);
/** Pongs sent per event-loop turn when a heartbeat pings many clients at once. */
const PONGS_PER_TURN = 200;
/** The read buffer every client of the process shares (see `open`). */
const READ_BUFFER = Buffer.allocUnsafe(256 * 1024);

export interface RawWsHandlers {
  /**
   * One complete text message: the bytes `data[start..end)`. The view is only valid during the
   * call (the buffer is the socket's chunk), so handlers read what they need and keep nothing.
   * `client` is passed because a server may speak first, before `open` has resolved.
   */
  onText(data: Buffer, start: number, end: number, client: RawWsClient): void;
  onClose(code: number): void;
}

/**
 * A minimal WebSocket client for the load generator: one `net.Socket`, frames parsed in place
 * from each TCP chunk, no per-message Buffer, no UTF-8 validation, no compression, no event
 * emitter. It does the least work per message that a client can, so that at 200,000+
 * messages/s the measured server, not the generator, is the bottleneck. It answers pings
 * (the gateway's heartbeat would otherwise cut it) and close frames.
 *
 * Frames it sends are masked with a zero key: RFC 6455 requires the mask bit, which servers
 * check; the key's value only matters against intermediaries that do not exist on loopback.
 */
export class RawWsClient {
  /** Pings answered by every client of this process (diagnostics). */
  static pings = { count: 0 };
  /**
   * Clients owing an empty pong. A server heartbeat may ping many sockets in one tick (tradewire's
   * spreads them over 100 ms slices, the naive server has none, Socket.IO pings in its own
   * packets); 10,000 browsers would each answer in their own process, but here one event loop
   * answers for all of them.
   * Answering in slices keeps that loop (and so the latencies it stamps) from stalling for the
   * whole burst; each pong still goes out within milliseconds, far inside any pong deadline.
   */
  static #pongQueue: RawWsClient[] = [];
  static #pongScheduled = false;

  static #sendQueuedPongs(): void {
    const queue = RawWsClient.#pongQueue;
    // A slow loop makes this queue late (a storm's 2-5 s turns sent pongs past the gateway's
    // 10 s deadline): the connections benchmark stamps its pings, and a ping with a payload is
    // answered at once (below), as a browser answers.
    const batch = queue.splice(0, PONGS_PER_TURN);
    const now = performance.now();
    for (const client of batch) {
      if (client.#closed) continue;
      client.#socket.write(EMPTY_PONG);
      client.lastPongAt = now;
    }
    if (queue.length > 0) setImmediate(RawWsClient.#sendQueuedPongs);
    else RawWsClient.#pongScheduled = false;
  }

  readonly #socket: Socket;
  readonly #handlers: RawWsHandlers;
  #pending: Buffer | null = null;
  #fragments: Buffer[] | null = null;
  #closed = false;
  #closeSent = false;
  /** `performance.now()` of the last ping received and of the last pong written (0: none). */
  lastPingAt = 0;
  lastPongAt = 0;
  /**
   * How long the last ping took from the server to this client, ms, when the server stamped it
   * (the connections benchmark's `ping-stamp-hook.ts`: 8 bytes of CLOCK_MONOTONIC µs); else -1.
   */
  lastPingTransitMs = -1;

  private constructor(socket: Socket, handlers: RawWsHandlers) {
    this.#socket = socket;
    this.#handlers = handlers;
    socket.on('close', () => this.#finish(1006));
    socket.on('error', () => this.#finish(1006));
  }

  /**
   * Opens a connection and completes the HTTP upgrade. Rejects with the HTTP status line when
   * the server refuses (e.g. `503` at its connection cap).
   *
   * Reads use `net.connect`'s `onread` into one buffer shared by every client of the process:
   * no stream machinery, no Buffer per read, no 'data' event. Each read is consumed before the
   * callback returns (the loop is single-threaded), so sharing the buffer is safe.
   */
  static open(
    host: string,
    port: number,
    path: string,
    handlers: RawWsHandlers,
    {
      headers = {},
      timeoutMs = 10_000,
      localAddress,
    }: { headers?: Record<string, string>; timeoutMs?: number; localAddress?: string } = {},
  ): Promise<RawWsClient> {
    return new Promise((resolve, reject) => {
      const key = randomBytes(16).toString('base64');
      let client: RawWsClient | undefined;
      let head: Buffer = Buffer.alloc(0);
      const onHandshakeData = (chunk: Buffer) => {
        head = head.length === 0 ? Buffer.from(chunk) : Buffer.concat([head, chunk]);
        const end = head.indexOf('\r\n\r\n');
        if (end === -1) {
          if (head.length > 16_384) fail(new Error('upgrade response too large'));
          return;
        }
        const response = head.subarray(0, end).toString('latin1');
        const statusLine = response.slice(0, response.indexOf('\r\n'));
        if (!/^HTTP\/1\.1 101 /.test(statusLine)) return fail(new Error(`upgrade refused: ${statusLine}`));
        const accept = /\r\nsec-websocket-accept:\s*(\S+)/i.exec(response)?.[1];
        const expected = createHash('sha1')
          .update(key + WS_GUID)
          .digest('base64');
        if (accept !== expected) return fail(new Error('bad Sec-WebSocket-Accept'));
        clearTimeout(timer);
        socket.off('error', fail);
        socket.off('close', onEarlyClose);
        client = new RawWsClient(socket, handlers);
        resolve(client);
        const rest = head.subarray(end + 4);
        if (rest.length > 0) client.#onData(rest, rest.length);
      };
      const socket = connect({
        host,
        port,
        // A loopback source address of its own: each (source, destination) pair has only
        // ~28,000 ephemeral ports, so 100,000 clients need several.
        ...(localAddress === undefined ? {} : { localAddress }),
        onread: {
          buffer: READ_BUFFER,
          callback: (nread: number, buffer: Uint8Array) => {
            if (client) client.#onData(buffer as Buffer, nread);
            else onHandshakeData((buffer as Buffer).subarray(0, nread));
            return true;
          },
        },
      });
      socket.setNoDelay(true);
      const timer = setTimeout(() => fail(new Error(`upgrade timed out after ${timeoutMs} ms`)), timeoutMs);
      const fail = (err: Error) => {
        clearTimeout(timer);
        socket.destroy();
        reject(err);
      };
      const onEarlyClose = () => fail(new Error('connection closed during upgrade'));
      socket.once('error', fail);
      socket.once('close', onEarlyClose);
      const extra = Object.entries(headers)
        .map(([name, value]) => `${name}: ${value}\r\n`)
        .join('');
      socket.write(
        `GET ${path} HTTP/1.1\r\nHost: ${host}:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
          `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n${extra}\r\n`,
      );
    });
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Sends one text message. */
  sendText(text: string): void {
    if (this.#closed) return;
    this.#sendFrame(OP_TEXT, Buffer.from(text, 'utf8'));
  }

  /** Starts the closing handshake; the socket is destroyed when the server answers or after 1 s. */
  close(code = 1000): void {
    if (this.#closed || this.#closeSent) return;
    this.#closeSent = true;
    const payload = Buffer.alloc(2);
    payload.writeUInt16BE(code);
    this.#sendFrame(OP_CLOSE, payload);
    setTimeout(() => this.#socket.destroy(), 1000).unref();
  }

  /** Drops the TCP connection without a closing handshake. */
  destroy(): void {
    this.#socket.destroy();
    this.#finish(1006);
  }

  #sendFrame(opcode: number, payload: Buffer): void {
    const length = payload.length;
    const headerLength = length < 126 ? 6 : length < 65_536 ? 8 : 14;
    const frame = Buffer.alloc(headerLength + length);
    frame[0] = 0x80 | opcode;
    if (length < 126) {
      frame[1] = 0x80 | length;
    } else if (length < 65_536) {
      frame[1] = 0x80 | 126;
      frame.writeUInt16BE(length, 2);
    } else {
      frame[1] = 0x80 | 127;
      frame.writeBigUInt64BE(BigInt(length), 2);
    }
    // The 4-byte masking key stays zero (Buffer.alloc), so the payload is copied unmasked.
    payload.copy(frame, headerLength);
    this.#socket.write(frame);
  }

  /** Parses the frames in `chunk[0..length)`; an incomplete last frame is copied for later. */
  #onData(chunk: Buffer, length: number): void {
    let data = chunk;
    if (this.#pending) {
      data = Buffer.concat([this.#pending, chunk.subarray(0, length)]);
      length = data.length;
      this.#pending = null;
    }
    let offset = 0;
    while (offset + 2 <= length) {
      const b0 = data[offset]!;
      const b1 = data[offset + 1]!;
      let payloadLength = b1 & 0x7f;
      let headerLength = 2;
      if (payloadLength === 126) {
        if (offset + 4 > length) break;
        payloadLength = data.readUInt16BE(offset + 2);
        headerLength = 4;
      } else if (payloadLength === 127) {
        if (offset + 10 > length) break;
        payloadLength = Number(data.readBigUInt64BE(offset + 2));
        headerLength = 10;
      }
      // Server frames are never masked (RFC 6455 5.1); a masked one is a protocol error.
      if (b1 & 0x80) {
        this.destroy();
        return;
      }
      const start = offset + headerLength;
      const end = start + payloadLength;
      if (end > length) break;
      this.#onFrame(b0 & 0x80, b0 & 0x0f, data, start, end);
      if (this.#closed) return;
      offset = end;
    }
    if (offset < length) this.#pending = Buffer.from(data.subarray(offset));
  }

  #onFrame(fin: number, opcode: number, data: Buffer, start: number, end: number): void {
    if (opcode === OP_TEXT || opcode === OP_BINARY) {
      if (fin) this.#handlers.onText(data, start, end, this);
      else this.#fragments = [Buffer.from(data.subarray(start, end))];
    } else if (opcode === OP_CONTINUATION) {
      if (!this.#fragments) return;
      this.#fragments.push(Buffer.from(data.subarray(start, end)));
      if (fin) {
        const whole = Buffer.concat(this.#fragments);
        this.#fragments = null;
        this.#handlers.onText(whole, 0, whole.length, this);
      }
    } else if (opcode === OP_PING) {
      RawWsClient.pings.count++;
      this.lastPingAt = performance.now();
      if (end > start) {
        if (end - start === 8) {
          const sentUs = data.readBigUInt64BE(start);
          this.lastPingTransitMs = Number(process.hrtime.bigint() / 1000n - sentUs) / 1000;
        }
        this.#sendFrame(OP_PONG, Buffer.from(data.subarray(start, end)));
        this.lastPongAt = this.lastPingAt;
      } else {
        RawWsClient.#pongQueue.push(this);
        if (!RawWsClient.#pongScheduled) {
          RawWsClient.#pongScheduled = true;
          setImmediate(RawWsClient.#sendQueuedPongs);
        }
      }
    } else if (opcode === OP_CLOSE) {
      const code = end - start >= 2 ? data.readUInt16BE(start) : 1005;
      if (!this.#closeSent) {
        this.#closeSent = true;
        const payload = Buffer.alloc(2);
        payload.writeUInt16BE(code === 1005 ? 1000 : code);
        this.#sendFrame(OP_CLOSE, payload);
      }
      this.#socket.end();
      this.#finish(code);
    }
    // Pong frames need no answer.
  }

  #finish(code: number): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#handlers.onClose(code);
  }
}
