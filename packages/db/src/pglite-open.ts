import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { chmod, mkdir, readFile, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import type { Logger } from '@repo/log';
import { MIGRATIONS_FOLDER, migratePgliteDatabase } from './migrate.ts';

/**
 * Opens (and migrates) an embedded PGlite database.
 *
 * A new PGlite database runs initdb in WebAssembly, which takes seconds (tens of seconds on a
 * busy machine). A fresh database therefore starts from a template: a tarball of an initdb'd
 * and fully migrated database, kept in `templateDir` under a name derived from the PGlite
 * version and the migrations, so a schema change never reuses a stale one. The first fresh
 * open on a machine makes it; later ones (tests, first starts) load it in a fraction of the
 * time. A missing, unreadable or broken template only costs the slow path.
 */
export async function openPglite(
  dataDir: string,
  options: { templateDir: string | null; logger: Logger },
): Promise<PGlite> {
  const { logger } = options;
  const inMemory = dataDir.startsWith('memory://');
  // The files hold password and token hashes: readable by this user only.
  if (!inMemory) await ensureOwnerOnlyDir(dataDir, logger);
  const fresh = inMemory || (await isEmptyDir(dataDir));
  const templateDir =
    fresh && options.templateDir && (await ensurePrivateDir(options.templateDir, logger)) ? options.templateDir : null;
  const templatePath = templateDir ? join(templateDir, `tradewire-pglite-${templateKey()}.tar.gz`) : null;

  if (templatePath && existsSync(templatePath)) {
    try {
      const tarball = new Blob([await readFile(templatePath)]);
      const client = inMemory ? new PGlite({ loadDataDir: tarball }) : new PGlite({ dataDir, loadDataDir: tarball });
      await client.waitReady;
      await migratePgliteDatabase(client);
      return client;
    } catch (err) {
      logger.warn(
        { err: (err as Error).message, templatePath },
        'PGlite template unusable; creating the database from scratch',
      );
      await rm(templatePath, { force: true });
      // The directory was empty before this attempt; clear what the failed load left.
      if (!inMemory) {
        await rm(dataDir, { recursive: true, force: true });
        await ensureOwnerOnlyDir(dataDir, logger);
      }
    }
  }

  const client = inMemory ? new PGlite() : new PGlite(dataDir);
  try {
    await client.waitReady;
    await migratePgliteDatabase(client);
    if (templatePath) await saveTemplate(client, templatePath, logger);
  } catch (err) {
    await client.close().catch(() => {});
    throw err;
  }
  return client;
}

/**
 * A template becomes the whole content of a new database, so it is only read from (and
 * written to) a directory that this user owns and nobody else can write: in a shared temp
 * directory another local user could otherwise plant one.
 */
async function ensurePrivateDir(dir: string, logger: Logger): Promise<boolean> {
  if (typeof process.getuid !== 'function') return false;
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const info = await stat(dir);
    if (info.isDirectory() && info.uid === process.getuid() && (info.mode & 0o022) === 0) return true;
    logger.warn({ dir }, 'PGlite template directory is not private to this user; not using templates');
  } catch (err) {
    logger.warn({ dir, err: (err as Error).message }, 'PGlite template directory unusable; not using templates');
  }
  return false;
}

/**
 * Creates `dir` with mode 0700, or narrows an existing one of this user's to 0700 (with a
 * warning, since someone chose wider access); a directory of another user is left alone.
 */
async function ensureOwnerOnlyDir(dir: string, logger: Logger): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const info = await stat(dir);
  if ((info.mode & 0o077) === 0) return;
  if (typeof process.getuid === 'function' && info.uid !== process.getuid()) {
    logger.warn({ dataDir: dir }, 'database directory belongs to another user and is readable by others');
    return;
  }
  await chmod(dir, 0o700);
  logger.warn({ dataDir: dir, mode: (info.mode & 0o777).toString(8) }, 'database directory narrowed to mode 700');
}

async function isEmptyDir(path: string): Promise<boolean> {
  try {
    return (await readdir(path)).length === 0;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return true;
    throw err;
  }
}

async function saveTemplate(client: PGlite, templatePath: string, logger: Logger): Promise<void> {
  try {
    const tarball = await client.dumpDataDir('gzip');
    // Written aside and renamed, so a concurrent opener never reads half a file.
    const partial = `${templatePath}.${process.pid}.${randomBytes(4).toString('hex')}.partial`;
    await writeFile(partial, Buffer.from(await tarball.arrayBuffer()));
    await rename(partial, templatePath);
  } catch (err) {
    logger.warn({ err: (err as Error).message }, 'could not save the PGlite template');
  }
}

let cachedKey: string | undefined;

/** Changes whenever the PGlite version or any migration file changes. */
function templateKey(): string {
  if (cachedKey) return cachedKey;
  const hash = createHash('sha256');
  const require = createRequire(import.meta.url);
  const pgliteEntry = require.resolve('@electric-sql/pglite');
  const pglitePackage = JSON.parse(readFileSync(join(dirname(pgliteEntry), '..', 'package.json'), 'utf8')) as {
    version: string;
  };
  hash.update(`pglite ${pglitePackage.version}\n`);
  for (const file of listFiles(MIGRATIONS_FOLDER)) {
    hash.update(`${file}\n`);
    hash.update(readFileSync(join(MIGRATIONS_FOLDER, file)));
  }
  cachedKey = hash.digest('hex').slice(0, 16);
  return cachedKey;
}

function listFiles(root: string, prefix = ''): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(join(root, prefix), { withFileTypes: true }).sort((a, b) =>
    a.name.localeCompare(b.name),
  )) {
    const path = prefix ? `${prefix}/${entry.name}` : entry.name;
    if (entry.isDirectory()) out.push(...listFiles(root, path));
    else out.push(path);
  }
  return out;
}

/** Default place of PGlite templates: a private folder per user in the system temp directory. */
export const DEFAULT_PGLITE_TEMPLATE_DIR = join(tmpdir(), `tradewire-pglite-templates-${process.getuid?.() ?? 'user'}`);
