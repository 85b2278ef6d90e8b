import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { REPO_ROOT } from '@repo/test-support';
import { webBuildDir } from './support/web-build.ts';

/**
 * The built page holds no Node-only code. The package graph keeps node-redis and pino out of
 * what the page imports; this checks the bundle itself, so a bundler that stopped shaking them
 * out, or a Node built-in creeping in, fails here rather than in a user's browser.
 */

/** Text that appears in the library's code and survives minification (string literals). */
const MARKERS = {
  'node-redis': { text: 'The client is closed', source: 'node_modules/@redis/client/dist/lib/errors.js' },
  pino: { text: "Symbol('pino.", source: 'node_modules/pino/lib/symbols.js', inBundle: 'pino.' },
};

const NODE_IMPORT = /(?:\bfrom\s*|\bimport\s*\(?\s*|\brequire\s*\(\s*)["'`]node:/;

let bundle = '';
before(async () => {
  const assets = join(await webBuildDir(), 'assets');
  bundle = readdirSync(assets)
    .filter((name) => name.endsWith('.js'))
    .map((name) => readFileSync(join(assets, name), 'utf8'))
    .join('\n');
});

describe('the web bundle', () => {
  it('is the page with its client (the scan looks at the right files)', () => {
    assert.ok(bundle.includes('tradewire client:'), 'the SDK is in the bundle');
  });

  for (const [library, marker] of Object.entries(MARKERS)) {
    it(`contains no ${library}`, () => {
      // The marker must still be in the library, or this check would pass for nothing.
      assert.ok(readFileSync(join(REPO_ROOT, marker.source), 'utf8').includes(marker.text), `${library} marker`);
      assert.equal(bundle.includes('inBundle' in marker ? marker.inBundle : marker.text), false);
    });
  }

  it('imports no node: module, and Vite replaced no Node built-in', () => {
    assert.doesNotMatch(bundle, NODE_IMPORT);
    // Vite's stand-in for a Node built-in imported by browser code.
    assert.equal(bundle.includes('__vite-browser-external'), false);
  });
});
