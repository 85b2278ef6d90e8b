import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { describe, it } from 'node:test';
import type { Writable } from 'node:stream';
import { encodeTextFrame } from '../src/transport/text-frame.ts';

/**
 * The gateway writes its own frames to the socket `ws` upgraded, past `ws`'s sender, so they
 * must be exactly what `ws` would write. `ws` is pinned to an exact version for that reason;
 * this test reads the frames back with that version's own parser.
 */

// ws's frame parser; exported at run time, not in @types/ws.
const { Receiver } = createRequire(import.meta.url)('ws') as {
  Receiver: new (options: { isServer: boolean; maxPayload: number }) => Writable;
};

/** Text of exactly `bytes` bytes of UTF-8 that mixes 2-, 3- and 4-byte characters with ASCII. */
function textOfBytes(bytes: number): string {
  const wide = ['é', '€', '😀'];
  let text = '';
  let left = bytes;
  for (let i = 0; left >= 4; i++) {
    const char = wide[i % wide.length]!;
    text += char;
    left -= Buffer.byteLength(char);
  }
  return text + 'x'.repeat(left);
}

/** What a client's `ws` receiver reads from `frame`: the text of one message, or its error. */
function receive(frame: Buffer): Promise<{ text: string; binary: boolean }> {
  const receiver = new Receiver({ isServer: false, maxPayload: 0 });
  return new Promise((resolve, reject) => {
    receiver.on('message', (data: Buffer, binary: boolean) => resolve({ text: data.toString('utf8'), binary }));
    receiver.on('error', reject);
    receiver.write(frame);
  });
}

describe('prebuilt text frames', () => {
  it("are read back by ws's own receiver as the same text, at every length class", async () => {
    // 125/126 and 65535/65536 are where the length field grows (7 bits, 16 bits, 64 bits).
    for (const bytes of [0, 1, 125, 126, 127, 65_535, 65_536, 70_000]) {
      const text = textOfBytes(bytes);
      assert.equal(Buffer.byteLength(text), bytes);
      const frame = encodeTextFrame(text);
      assert.deepEqual(await receive(frame), { text, binary: false }, `${bytes} bytes`);
    }
  });

  it('use the shortest length field, unmasked, with FIN set, as RFC 6455 requires of a server', () => {
    const cases: [number, number][] = [
      [0, 2],
      [125, 2],
      [126, 4],
      [65_535, 4],
      [65_536, 10],
    ];
    for (const [bytes, header] of cases) {
      const frame = encodeTextFrame(textOfBytes(bytes));
      assert.equal(frame.length, header + bytes, `${bytes} bytes`);
      assert.equal(frame[0], 0x81, 'FIN + text opcode');
      assert.equal(frame[1]! & 0x80, 0, 'unmasked');
    }
  });
});
