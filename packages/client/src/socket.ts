import type { ServerMessage } from '@repo/protocol';

/**
 * The part of the WebSocket API the client uses. The browser's `WebSocket` and the `ws`
 * package's `WebSocket` both provide it, which is why the client never imports `ws`.
 */
export interface SocketLike {
  binaryType?: string;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  addEventListener(type: 'open', listener: () => void): void;
  addEventListener(type: 'message', listener: (event: { data: unknown }) => void): void;
  addEventListener(type: 'close', listener: (event: { code?: number; reason?: string }) => void): void;
  addEventListener(type: 'error', listener: (event: unknown) => void): void;
}

export type SocketConstructor = new (url: string) => SocketLike;

/**
 * The WebSocket class to use: the option when given, else the global one. Fails at
 * `connect()` with a message naming the option, rather than at the first reconnect.
 */
export function resolveSocketConstructor(option: unknown): SocketConstructor {
  if (option !== undefined) {
    if (typeof option !== 'function') {
      throw new TypeError('options.WebSocket must be a WebSocket constructor (the browser one or `ws`)');
    }
    return option as SocketConstructor;
  }
  const global = (globalThis as { WebSocket?: unknown }).WebSocket;
  if (typeof global !== 'function') {
    throw new TypeError(
      'no global WebSocket in this runtime: pass options.WebSocket (in Node, `import { WebSocket } from "ws"`)',
    );
  }
  return global as SocketConstructor;
}

const utf8 = new TextDecoder();

/**
 * Decodes one frame into a server message, or explains why it cannot. Never throws: a frame
 * we do not understand is dropped and logged, the connection stays up.
 */
export function decodeFrame(data: unknown): { ok: true; message: ServerMessage } | { ok: false; reason: string } {
  let text: string;
  if (typeof data === 'string') text = data;
  // The gateway sends text frames; accept bytes too (a `ws` socket with binaryType set, a proxy).
  else if (data instanceof ArrayBuffer || ArrayBuffer.isView(data)) text = utf8.decode(data);
  else return { ok: false, reason: 'binary frame of an unsupported kind' };
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return { ok: false, reason: 'frame is not JSON' };
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    return { ok: false, reason: 'frame is not a JSON object' };
  }
  if (typeof (parsed as { type?: unknown }).type !== 'string') {
    return { ok: false, reason: 'frame has no string "type"' };
  }
  return { ok: true, message: parsed as ServerMessage };
}
