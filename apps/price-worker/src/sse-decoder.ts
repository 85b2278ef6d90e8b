/** One Server-Sent Event: `event` is `'message'` when the server named none. */
export interface SseEvent {
  event: string;
  data: string;
}

/**
 * Decodes a `text/event-stream` body fed in arbitrary text chunks, as the HTML standard's
 * "event stream interpretation" says: lines end in CRLF, LF or CR; `:` starts a comment (Hermes'
 * keep-alive); `data:` lines of one event are joined with newlines; one space after the colon
 * is dropped; an empty line dispatches. `id` and `retry` are ignored: Hermes sends neither and
 * the stream's reconnection is the caller's.
 *
 * An event (or a line) longer than `maxEventChars` throws a RangeError: a server that never
 * ends its event must not grow this buffer without bound.
 */
export class SseDecoder {
  readonly #maxEventChars: number;
  #line = '';
  #data: string[] = [];
  #dataChars = 0;
  #event = '';
  #started = false;
  // A chunk that ended in CR: an LF opening the next chunk belongs to the same line break.
  #skipLf = false;

  constructor(maxEventChars = 1024 * 1024) {
    this.#maxEventChars = maxEventChars;
  }

  push(chunk: string): SseEvent[] {
    if (!this.#started && chunk.length > 0) {
      this.#started = true;
      if (chunk.charCodeAt(0) === 0xfeff) chunk = chunk.slice(1);
    }
    const events: SseEvent[] = [];
    let start = 0;
    if (this.#skipLf && chunk.startsWith('\n')) start = 1;
    if (chunk.length > 0) this.#skipLf = false;
    for (let i = start; i < chunk.length; i++) {
      const code = chunk.charCodeAt(i);
      if (code !== 10 && code !== 13) continue;
      const line = this.#line + chunk.slice(start, i);
      this.#line = '';
      if (code === 13) {
        if (i + 1 === chunk.length) this.#skipLf = true;
        else if (chunk.charCodeAt(i + 1) === 10) i++;
      }
      start = i + 1;
      const event = this.#takeLine(line);
      if (event) events.push(event);
    }
    this.#line += chunk.slice(start);
    if (this.#line.length + this.#dataChars > this.#maxEventChars) {
      throw new RangeError(`event stream: an event is longer than ${this.#maxEventChars} characters`);
    }
    return events;
  }

  #takeLine(line: string): SseEvent | undefined {
    if (line === '') return this.#dispatch();
    if (line.startsWith(':')) return undefined;
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'data') {
      this.#data.push(value);
      this.#dataChars += value.length + 1;
      if (this.#dataChars > this.#maxEventChars) {
        throw new RangeError(`event stream: an event is longer than ${this.#maxEventChars} characters`);
      }
    } else if (field === 'event') {
      this.#event = value;
    }
    return undefined;
  }

  #dispatch(): SseEvent | undefined {
    const data = this.#data;
    const event = this.#event;
    this.#data = [];
    this.#dataChars = 0;
    this.#event = '';
    if (data.length === 0) return undefined;
    return { event: event === '' ? 'message' : event, data: data.join('\n') };
  }
}
