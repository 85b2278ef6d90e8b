import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root (where the root package.json lists the workspaces). */
export const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));

export interface PackageManifest {
  name: string;
  dependencies?: Record<string, string>;
  devDependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  exports?: string | Record<string, string | Record<string, string>>;
  scripts?: Record<string, string>;
}

export interface WorkspacePackage {
  readonly name: string;
  /** Absolute path of its folder. */
  readonly dir: string;
  /** Its folder relative to the root, e.g. `packages/client`. */
  readonly path: string;
  readonly manifest: PackageManifest;
}

/** Every workspace package, by name, read from the root package.json's `workspaces`. */
export function readWorkspace(root = REPO_ROOT): Map<string, WorkspacePackage> {
  const rootManifest = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { workspaces: string[] };
  const dirs = rootManifest.workspaces.flatMap((pattern) => {
    if (!pattern.endsWith('/*')) return [join(root, pattern)];
    const parent = join(root, pattern.slice(0, -2));
    return readdirSync(parent).map((name) => join(parent, name));
  });
  const packages = new Map<string, WorkspacePackage>();
  for (const dir of dirs) {
    const file = join(dir, 'package.json');
    if (!existsSync(file)) continue;
    const manifest = JSON.parse(readFileSync(file, 'utf8')) as PackageManifest;
    packages.set(manifest.name, { name: manifest.name, dir, path: relative(root, dir), manifest });
  }
  return packages;
}

/**
 * Every package a runtime import of `from` can reach: its `dependencies`, and theirs through
 * each workspace package on the way (devDependencies never ship). Packages outside the
 * workspace are listed but not entered.
 */
export function runtimeReachable(
  workspace: ReadonlyMap<string, WorkspacePackage>,
  from: readonly string[],
): Set<string> {
  const reached = new Set<string>();
  const queue = [...from];
  while (queue.length > 0) {
    const name = queue.shift()!;
    const pkg = workspace.get(name);
    if (!pkg) throw new Error(`${name} is not a workspace package`);
    for (const dependency of Object.keys(pkg.manifest.dependencies ?? {})) {
      if (reached.has(dependency)) continue;
      reached.add(dependency);
      if (workspace.has(dependency)) queue.push(dependency);
    }
  }
  return reached;
}

const SOURCE_FILE = /\.(?:ts|tsx|js|mjs|cjs)$/;
const SKIPPED_DIRS = new Set(['node_modules', 'dist', 'results', 'data']);

/** The source files of a package (tests and configs included), skipping installs and build output. */
export function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return SKIPPED_DIRS.has(name) ? [] : sourceFiles(path);
    return SOURCE_FILE.test(name) ? [path] : [];
  });
}

const NODE_BUILTINS = new Set(builtinModules);
// Static and dynamic imports and re-exports, type-only ones included: a type import needs the
// package installed to compile.
// The clause between `import`/`export` and `from` holds only names, braces, commas and `*`, so a
// string that merely mentions an import ("pass `import { WebSocket } from 'ws'`") is not one.
const SPECIFIER =
  /^\s*(?:(?:import|export)\s[\w$*{},\s]*?\bfrom\s*|import\s*)['"]([^'"]+)['"]|\bimport\(\s*['"]([^'"]+)['"]\s*\)/gm;

/** The packages a source file imports (`zod/v4` counts as `zod`), without Node's built-ins. */
export function importedPackages(source: string): Set<string> {
  const packages = new Set<string>();
  // Comments first: usage examples in JSDoc ("import { WebSocket } from 'ws'") import nothing.
  const code = source.replace(/\/\*[\s\S]*?\*\//g, '').replace(/(^|[^:'"`\w])\/\/.*$/gm, '$1');
  for (const match of code.matchAll(SPECIFIER)) {
    const specifier = (match[1] ?? match[2])!;
    if (specifier.startsWith('.') || specifier.startsWith('/') || specifier.startsWith('node:')) continue;
    const parts = specifier.split('/');
    const name = specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0]!;
    if (NODE_BUILTINS.has(name)) continue;
    packages.add(name);
  }
  return packages;
}
