import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { readWorkspace, runtimeReachable } from '@repo/test-support';

/**
 * What a browser loads must not depend on anything Node-only. The walk follows `dependencies`
 * (what ships) through every workspace package on the way; the package-hygiene test keeps those
 * declarations equal to what the sources import, so the declared graph is the real one.
 */
const NODE_ONLY = ['redis', 'pino', 'pg', '@repo/broker', '@repo/log', '@repo/redis', '@repo/db'];

const workspace = readWorkspace();

describe('browser-safe package graph', () => {
  for (const from of ['@repo/client', '@repo/web']) {
    it(`reaches nothing Node-only from ${from}`, () => {
      const reached = runtimeReachable(workspace, [from]);
      assert.deepEqual(
        NODE_ONLY.filter((name) => reached.has(name)),
        [],
      );
    });
  }

  it('walks through workspace packages to what they depend on', () => {
    // The page reaches zod through client → protocol → events: the walk is transitive.
    assert.ok(runtimeReachable(workspace, ['@repo/web']).has('zod'));
    // And it does see Node-only packages where they are: from the launcher, every one.
    const fromServer = runtimeReachable(workspace, ['@repo/server']);
    assert.deepEqual(
      NODE_ONLY.filter((name) => !fromServer.has(name)),
      [],
    );
  });
});
