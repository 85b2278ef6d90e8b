import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { SseDecoder, type SseEvent } from '../src/sse-decoder.ts';

const decodeAll = (chunks: string[], max?: number): SseEvent[] => {
  const decoder = new SseDecoder(max);
  return chunks.flatMap((chunk) => decoder.push(chunk));
};

describe('SseDecoder: the text/event-stream format', () => {
  it('decodes Hermes updates, its error event and its keep-alive comments', () => {
    const body =
      ':\n\n' +
      'data:{"parsed":[{"id":"ab"}]}\n\n' +
      ':\n\n' +
      'data: {"parsed":[]}\n\n' +
      'event:error\ndata:Connection timeout reached (24h)\n\n';
    assert.deepEqual(decodeAll([body]), [
      { event: 'message', data: '{"parsed":[{"id":"ab"}]}' },
      { event: 'message', data: '{"parsed":[]}' },
      { event: 'error', data: 'Connection timeout reached (24h)' },
    ]);
  });

  it('joins data lines, accepts CRLF, CR and LF, drops one space after the colon, skips a BOM', () => {
    assert.deepEqual(decodeAll(['\ufeffdata: a\r\ndata:  b\rdata\n\nevent: x\ndata: y\r\n\r\n']), [
      { event: 'message', data: 'a\n b\n' },
      { event: 'x', data: 'y' },
    ]);
  });

  it('an event without data, an unknown field or an id is not an event of its own', () => {
    assert.deepEqual(decodeAll(['event: ping\n\nid: 7\nretry: 10\nfoo: bar\n\ndata: z\n\n']), [
      { event: 'message', data: 'z' },
    ]);
  });

  it('gives the same events however the bytes are split into chunks', () => {
    const body =
      'data:{"parsed":[1]}\r\n\r\n:\r\n\r\nevent:error\rdata:oops\r\rdata: x\ndata: y\n\n' + 'data: last\r\n\r\n';
    const whole = decodeAll([body]);
    assert.equal(whole.length, 4);
    fc.assert(
      fc.property(fc.uniqueArray(fc.integer({ min: 1, max: body.length - 1 }), { maxLength: 20 }), (cuts) => {
        const points = [0, ...cuts.sort((a, b) => a - b), body.length];
        const chunks = points.slice(1).map((end, i) => body.slice(points[i], end));
        assert.deepEqual(decodeAll(chunks), whole);
      }),
    );
  });

  it('refuses an event that never ends instead of buffering without bound', () => {
    const decoder = new SseDecoder(100);
    assert.deepEqual(decoder.push(`data: ${'x'.repeat(50)}\n\n`), [{ event: 'message', data: 'x'.repeat(50) }]);
    assert.throws(() => decoder.push('data: ' + 'x'.repeat(60) + '\ndata: ' + 'x'.repeat(60) + '\n'), RangeError);
    assert.throws(() => new SseDecoder(100).push('data: ' + 'y'.repeat(200)), RangeError);
  });
});
