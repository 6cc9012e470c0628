// `turnout demo --rollout` prints its status page's URL, and that page (the
// controller's) shows the rollout as it happens: opened while the demo runs,
// it sees the steps advance. The demo itself still accounts for every message.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { figure, launchBrowser, nextUpdates, openPage, screenshot, type TestBrowser } from '../support/browser.ts';
import { CLI } from '../support/process.ts';
import { waitFor } from '../support/wait.ts';

const dir = mkdtempSync(join(tmpdir(), 'turnout-page-demo-'));
let b: TestBrowser;

before(async () => {
  b = await launchBrowser();
});
after(async () => {
  await b?.close();
  rmSync(dir, { recursive: true, force: true });
});

test('turnout demo --rollout: the printed page shows the steps advancing', async () => {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('TURNOUT_') && v !== undefined) env[k] = v;
  const child = spawn(process.execPath, [CLI, 'demo', '--rollout', '--messages', '300', '--rate', '60'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | string>((resolve) => child.on('exit', (code, signal) => resolve(code ?? signal ?? -1)));
  try {
    const url: string = await waitFor('the demo to print its page', () => /watch it live: (http:\/\/127\.0\.0\.1:\d+\/)/.exec(out)?.[1], 60_000, 50) as string;
    const page = await openPage(b, url);
    await nextUpdates(page.page, 1);
    const first = await figure(page.page, 'step');
    // The page follows the controller: the step it shows moves on (or the rollout ends promoted).
    await waitFor('the page to show the next step', async () => {
      const step = await figure(page.page, 'step');
      return (step !== first && step !== '–') || (await figure(page.page, 'phase')) === 'promoted';
    }, 60_000, 100);
    await screenshot(page.page, dir, 'demo-rollout-page');
    const errors = [...page.errors];
    await page.page.context().close(); // before the demo ends and its page stops answering
    assert.deepEqual(errors, [], 'no console errors');
    assert.equal(await exited, 0, out);
    assert.match(out, /^ {2}lost\s+0\s/m);
  } finally {
    child.kill('SIGKILL');
  }
});
