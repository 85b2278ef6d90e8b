import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { CLIENT_ERROR_CODES, CLOSE_CODES, ERROR_CODES } from '../src/index.ts';

const doc = readFileSync(new URL('../../../docs/protocol.md', import.meta.url), 'utf8');

/** The first cell of every table row in the section under `heading`, up to the next `## `. */
function firstCells(heading: string): string[] {
  const start = doc.indexOf(`\n${heading}\n`);
  assert.notEqual(start, -1, `docs/protocol.md has a "${heading}" section`);
  const end = doc.indexOf('\n## ', start + 1);
  const section = doc.slice(start, end === -1 ? undefined : end);
  return [...section.matchAll(/^\| *`?([\w]+)`? *\|/gm)].map((m) => m[1]!).filter((cell) => cell !== 'code');
}

const sorted = (values: readonly (string | number)[]) => values.map(String).sort();

test('docs/protocol.md lists exactly the error codes of the protocol table, the SDK own included', () => {
  assert.deepEqual(sorted(firstCells('## Error codes')), sorted([...ERROR_CODES, ...CLIENT_ERROR_CODES]));
});

test('docs/protocol.md lists exactly the close codes of the protocol table', () => {
  assert.deepEqual(sorted(firstCells('## Close codes')), sorted(Object.values(CLOSE_CODES)));
});

test('no close code or error code is listed twice', () => {
  const codes = Object.values(CLOSE_CODES);
  assert.equal(new Set(codes).size, codes.length);
  const errors = [...ERROR_CODES, ...CLIENT_ERROR_CODES];
  assert.equal(new Set(errors).size, errors.length);
});
