import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, it } from 'node:test';
import {
  REPO_ROOT,
  importedPackages,
  readWorkspace,
  sourceFiles,
  type PackageManifest,
  type WorkspacePackage,
} from '../src/index.ts';

/**
 * Every package.json declares exactly what its sources import: what `src/` imports is a
 * dependency (it ships), what tests and configs import is at least a devDependency, and nothing
 * is declared that no file imports. A package without `src/` (the benchmark) runs all its files.
 * `@types/x` counts as used when `x` is imported; tools run from scripts (vite, drizzle-kit)
 * when a script names them.
 */

const workspace = readWorkspace();

interface Imports {
  runtime: Set<string>;
  all: Set<string>;
}

function importsOf(pkg: WorkspacePackage): Imports {
  const files = sourceFiles(pkg.dir);
  const hasSrc = files.some((file) => relative(pkg.dir, file).startsWith('src/'));
  const runtime = new Set<string>();
  const all = new Set<string>();
  for (const file of files) {
    const isRuntime = !hasSrc || relative(pkg.dir, file).startsWith('src/');
    for (const name of importedPackages(readFileSync(file, 'utf8'))) {
      if (name === pkg.name) continue;
      all.add(name);
      if (isRuntime) runtime.add(name);
    }
  }
  return { runtime, all };
}

/** `@types/foo` for `foo`, `@types/a__b` for `@a/b`. */
const typesPackageOf = (name: string) => `@types/${name.startsWith('@') ? name.slice(1).replace('/', '__') : name}`;

/** Whether `name` needs a separate `@types` package: it ships no types and DefinitelyTyped has some. */
function needsTypesPackage(name: string): boolean {
  const dir = join(REPO_ROOT, 'node_modules', name);
  if (!existsSync(join(REPO_ROOT, 'node_modules', typesPackageOf(name)))) return false;
  const manifest = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { types?: string; typings?: string };
  return !manifest.types && !manifest.typings && !existsSync(join(dir, 'index.d.ts'));
}

function isUsed(declared: string, manifest: PackageManifest, imports: Imports): boolean {
  if (imports.all.has(declared)) return true;
  if (declared.startsWith('@types/')) return [...imports.all].some((name) => typesPackageOf(name) === declared);
  return Object.values(manifest.scripts ?? {}).some((script) =>
    new RegExp(`(^|[\\s&;])${declared}(\\s|$)`).test(script),
  );
}

describe('package hygiene', () => {
  for (const pkg of workspace.values()) {
    describe(pkg.name, () => {
      const { manifest } = pkg;
      const dependencies = new Set(Object.keys({ ...manifest.dependencies, ...manifest.peerDependencies }));
      const devDependencies = new Set(Object.keys(manifest.devDependencies ?? {}));
      const imports = importsOf(pkg);

      it('declares as dependencies what its shipped code imports', () => {
        assert.deepEqual([...imports.runtime].filter((name) => !dependencies.has(name)).sort(), []);
      });

      it('declares what its tests and configs import', () => {
        const missing = [...imports.all].filter((name) => !dependencies.has(name) && !devDependencies.has(name));
        assert.deepEqual(missing.sort(), []);
      });

      it('declares the @types packages of what it imports', () => {
        const declared = new Set([...dependencies, ...devDependencies]);
        const missing = [...imports.all].filter(
          (name) => needsTypesPackage(name) && !declared.has(typesPackageOf(name)),
        );
        assert.deepEqual(missing.map(typesPackageOf).sort(), []);
      });

      it('ships only what its shipped code imports (the rest is a devDependency)', () => {
        const runtimeOnly = { all: imports.runtime, runtime: imports.runtime };
        const testOnly = [...dependencies].filter((name) => !isUsed(name, manifest, runtimeOnly));
        assert.deepEqual(testOnly.sort(), []);
      });

      it('declares nothing it does not use', () => {
        const unused = [...dependencies, ...devDependencies].filter((name) => !isUsed(name, manifest, imports));
        assert.deepEqual(unused.sort(), []);
      });

      it('exports only files that exist', () => {
        const targets =
          manifest.exports === undefined
            ? []
            : typeof manifest.exports === 'string'
              ? [manifest.exports]
              : Object.values(manifest.exports).flatMap((target) =>
                  typeof target === 'string' ? [target] : Object.values(target),
                );
        assert.deepEqual(
          targets.filter((target) => !existsSync(join(pkg.dir, target))),
          [],
        );
      });
    });
  }
});

it("npm test runs every workspace package's test files", () => {
  const scripts = (JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as PackageManifest).scripts ?? {};
  // npm test lists its globs by folder (the browser tests run on their own, one file at a time).
  const run = `${scripts.test ?? ''} ${scripts['test:browser'] ?? ''}`;
  for (const pkg of workspace.values()) {
    const dir = relative(REPO_ROOT, pkg.dir);
    if (!existsSync(join(pkg.dir, 'test'))) continue;
    const covered = run.includes(`${dir}/test/*.test.ts`) || run.includes(`${dir.split('/')[0]}/*/test/*.test.ts`);
    assert.ok(covered, `npm test runs none of ${dir}/test/*.test.ts`);
  }
});
