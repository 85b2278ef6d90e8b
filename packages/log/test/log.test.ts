import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const SCRIPT = fileURLToPath(new URL('./print-lines.ts', import.meta.url));

async function linesOf(mode: 'json' | 'pretty'): Promise<string[]> {
  const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', SCRIPT, mode], {
    env: { ...process.env, NO_COLOR: '1' },
  });
  return stdout.trimEnd().split('\n');
}

test('by default each line is one JSON object, secrets redacted', async () => {
  const lines = (await linesOf('json')).map((line) => JSON.parse(line) as Record<string, unknown>);
  assert.equal(lines.length, 2);
  assert.equal(lines[0]!.msg, 'user signed in');
  assert.equal(lines[0]!.userId, 7);
  assert.equal(lines[0]!.token, '[redacted]');
  assert.equal(lines[0]!.name, 'tradewire');
  assert.equal(lines[1]!.level, 40);
});

test('pretty lines are for reading: level and message first, fields below, secrets still redacted', async () => {
  const output = await linesOf('pretty');
  const text = output.join('\n');
  assert.throws(() => JSON.parse(output[0]!) as unknown, 'not JSON');
  assert.match(output[0]!, /^\[\d\d:\d\d:\d\d\.\d{3}\] INFO \(tradewire\): user signed in$/);
  assert.match(text, /userId: 7/);
  assert.match(text, /token: "\[redacted\]"/);
  assert.doesNotMatch(text, /secret-token/);
  assert.match(text, /WARN \(tradewire\): broker down/);
});
