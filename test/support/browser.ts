// A real browser for the status page tests: Debian's chromium
// (scripts/test-setup.d/50-chromium.sh installs it), driven by
// playwright-core over a browser server whose process id the test holds, so
// after() can kill it by PID whatever state it is in. Headless, no sandbox
// (the tests run as root), no background networking: nothing leaves the
// machine. Console messages and page errors are collected per page.

import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { waitFor } from './wait.ts';
import { chromium, type Browser, type BrowserServer, type ConsoleMessage, type Page } from 'playwright-core';

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

export interface TestBrowser {
  browser: Browser;
  pid: number;
  close(): Promise<void>;
}

export async function launchBrowser(): Promise<TestBrowser> {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: scripts/test-setup.d/50-chromium.sh installs it (apt-get install chromium)`);
  const server: BrowserServer = await chromium.launchServer({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--headless', '--disable-background-networking', '--disable-component-update', '--no-first-run', '--disable-gpu'],
  });
  const pid = server.process().pid;
  if (pid === undefined) throw new Error('chromium started without a process id');
  const browser = await chromium.connect(server.wsEndpoint());
  return {
    browser,
    pid,
    close: async () => {
      await browser.close().catch(() => {});
      await server.close().catch(() => {});
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // Already gone: close() ended it.
      }
    },
  };
}

export interface WatchedPage {
  page: Page;
  /** Console messages of type error and uncaught page errors, as text. */
  errors: string[];
}

/** A new page (its own context: nothing shared between tests) whose console errors are collected. */
export async function openPage(b: TestBrowser, url: string, options: { width?: number; height?: number; dark?: boolean } = {}): Promise<WatchedPage> {
  const context = await b.browser.newContext({
    viewport: { width: options.width ?? 1200, height: options.height ?? 900 },
    colorScheme: options.dark ? 'dark' : 'light',
  });
  const page = await context.newPage();
  const errors: string[] = [];
  page.on('console', (m: ConsoleMessage) => {
    if (m.type() === 'error') errors.push(`${m.text()} ${JSON.stringify(m.location())}`);
  });
  page.on('pageerror', (err) => errors.push(`page error: ${err.message}`));
  await page.goto(url);
  return { page, errors };
}

/** Where a test's screenshots go: its temporary folder, and SCREENSHOT_DIR too when set (docs/ images). */
export async function screenshot(page: Page, dir: string, name: string): Promise<string> {
  mkdirSync(dir, { recursive: true });
  const path = join(dir, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  const extra = process.env.SCREENSHOT_DIR;
  if (extra !== undefined && extra !== '') {
    mkdirSync(extra, { recursive: true });
    await page.screenshot({ path: join(extra, `${name}.png`), fullPage: true });
  }
  return path;
}

/** The page's number of completed refreshes (data-updates on <body>). */
export async function updates(page: Page): Promise<number> {
  return Number((await page.getAttribute('body', 'data-updates')) ?? 0);
}

/** Waits until the page has refreshed at least `n` more times than now. */
export async function nextUpdates(page: Page, n = 1, timeoutMs = 15_000): Promise<void> {
  const start = await updates(page);
  // Polled from here: waitForFunction would evaluate code in the page, which its CSP (rightly) refuses.
  await waitFor(`${n} more refreshes of the page`, async () => (await updates(page)) >= start + n, timeoutMs, 100);
}

/** The text of the element with data-figure="name". */
export async function figure(page: Page, name: string): Promise<string> {
  const text = await page.locator(`[data-figure="${name}"]`).first().textContent();
  if (text === null) throw new Error(`no element with data-figure="${name}"`);
  return text.trim();
}

/** A number as the page writes it ("1,234", "30 %"). */
export const parseShown = (text: string): number => Number(text.replace(/[,%\s]|ms/g, ''));
