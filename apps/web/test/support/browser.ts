import { existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { waitFor } from '@repo/test-support';

/** Debian's Chromium (`apt-get install chromium`); CHROMIUM_PATH overrides it. */
export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

export const SCREENSHOT_DIR = fileURLToPath(new URL('../../../../test-output/screenshots/', import.meta.url));

/**
 * One browser at a time across the test files that `npm test` runs side by side: two of them,
 * each with its Chromium and its whole system, on the 2 cores of CI starved a page until a click
 * timed out (its renderer did not answer for 15 s). A lock folder holding the owner's PID; one
 * whose owner is gone is taken over.
 */
const BROWSER_SLOT = join(tmpdir(), 'tradewire-browser-slot');

/** Browsers of this process holding the slot: a file may run two at once. */
let heldHere = 0;

function slotOwnerAlive(): boolean {
  try {
    const pid = Number(readFileSync(join(BROWSER_SLOT, 'pid'), 'utf8'));
    if (!Number.isSafeInteger(pid) || pid <= 0) return true; // being written
    process.kill(pid, 0);
    return true;
  } catch (err) {
    const { code } = err as NodeJS.ErrnoException;
    if (code === 'EPERM') return true;
    // No PID yet: being written, unless its owner died between the folder and the file.
    if (code === 'ENOENT') return existsSync(BROWSER_SLOT) && Date.now() - statSync(BROWSER_SLOT).mtimeMs < 10_000;
    return false;
  }
}

async function takeBrowserSlot(): Promise<() => void> {
  for (;;) {
    if (heldHere > 0) heldHere++;
    else {
      try {
        mkdirSync(BROWSER_SLOT);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
        if (!slotOwnerAlive()) {
          rmSync(BROWSER_SLOT, { recursive: true, force: true });
          continue;
        }
        await waitFor(() => heldHere > 0 || !existsSync(BROWSER_SLOT) || !slotOwnerAlive(), {
          timeoutMs: 600_000,
          intervalMs: 100,
          what: "another test file's browser to close",
        });
        continue;
      }
      writeFileSync(join(BROWSER_SLOT, 'pid'), String(process.pid));
      heldHere = 1;
      process.on('exit', dropSlot);
    }
    let released = false;
    return () => {
      if (released) return;
      released = true;
      if (--heldHere === 0) dropSlot();
    };
  }
}

function dropSlot(): void {
  process.off('exit', dropSlot);
  heldHere = 0;
  rmSync(BROWSER_SLOT, { recursive: true, force: true });
}

export async function launchBrowser(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(
      `no Chromium at ${CHROMIUM}: install it with \`apt-get install -y chromium\` (or set CHROMIUM_PATH)`,
    );
  }
  const release = await takeBrowserSlot();
  try {
    const browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
    });
    browser.on('disconnected', release);
    return browser;
  } catch (err) {
    release();
    throw err;
  }
}

/** Errors the page throws or logs: a test that ends with any of them fails. */
export function collectPageErrors(page: Page): string[] {
  const errors: string[] = [];
  page.on('pageerror', (err) => errors.push(`pageerror: ${err.message}`));
  page.on('console', (msg) => {
    // Chromium itself logs every non-2xx response (a 422 rejection is an expected answer) and
    // every refused WebSocket attempt (expected while a test keeps the gateway down).
    if (msg.type() === 'error' && !/Failed to load resource|WebSocket connection to .* failed/.test(msg.text())) {
      errors.push(`console: ${msg.text()}`);
    }
  });
  return errors;
}

export async function newPage(
  browser: Browser,
  baseUrl: string,
  viewport = { width: 1280, height: 900 },
): Promise<{ context: BrowserContext; page: Page; errors: string[] }> {
  const context = await browser.newContext({ baseURL: baseUrl, viewport });
  const page = await context.newPage();
  page.setDefaultTimeout(15_000);
  const errors = collectPageErrors(page);
  return { context, page, errors };
}

export function screenshotPath(name: string): string {
  mkdirSync(SCREENSHOT_DIR, { recursive: true });
  return join(SCREENSHOT_DIR, name);
}
