// The rollout controller's status page in a real browser: a real
// `turnout rollout` process ramping a real router sidecar (embedded broker)
// that carries traffic while the test drives the page. The figures must
// equal GET /v1/rollout, the weight chart must grow, and the buttons must
// refuse without the admin token and work with it. Every message published
// is accounted for on the router's blue and green queues.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { figure, launchBrowser, nextUpdates, openPage, parseShown, screenshot, type TestBrowser, type WatchedPage } from '../support/browser.ts';
import { startController, type ControllerProcess, type RolloutStatus } from '../support/controller.ts';
import { depthOf, publishVia, startTurnout, type TurnoutProcess } from '../support/process.ts';
import { sleep, waitFor } from '../support/wait.ts';

const ADMIN = 'page-controller-admin-token-91d3';
const CHECK = 'router-dead-letters';
const dir = mkdtempSync(join(tmpdir(), 'turnout-page-controller-'));
let router: TurnoutProcess;
let controller: ControllerProcess;
let b: TestBrowser;
let page: WatchedPage;
let sent = 0;
let traffic: Promise<void> | undefined;
let producing = true;

before(async () => {
  router = await startTurnout({ TURNOUT_SOURCE: 'pc.ingress', TURNOUT_BLUE: 'pc.blue', TURNOUT_GREEN: 'pc.green', TURNOUT_DLQ: 'pc.dead', TURNOUT_ADMIN_TOKEN: ADMIN });
  // Modest traffic for the judged intervals: 20 messages a second until the test ends.
  traffic = (async () => {
    while (producing) {
      const r = await publishVia(router.baseUrl, JSON.stringify({ n: sent }), { 'x-turnout-key': `k${sent}` }, 'pc.ingress');
      assert.equal(r.status, 202);
      sent++;
      await sleep(50);
    }
  })();
  const plan = join(dir, 'plan.yaml');
  writeFileSync(plan, [
    `routers: ["${router.baseUrl}"]`,
    // Enough steps that the rollout cannot end by itself while a loaded machine runs the test.
    'steps: [10, 20, 30, 40, 50, 60, 100]',
    'interval: 3s',
    'analysis:',
    `  scrape: ["${router.baseUrl}"]`,
    '  failureLimit: 0',
    '  noData: pause',
    '  checks:',
    `    - name: ${CHECK}`,
    '      metric: dead-letter-ratio',
    '      sources: [pc.ingress]',
    '      max: 0.5',
    '',
  ].join('\n'));
  controller = await startController([plan, '--keep-serving'], { TURNOUT_ADMIN_TOKEN: ADMIN });
  b = await launchBrowser();
});

after(async () => {
  producing = false;
  await traffic?.catch(() => {});
  await b?.close();
  await controller?.kill('SIGKILL');
  await router?.kill();
  rmSync(dir, { recursive: true, force: true });
});

const answer = async (): Promise<{ status: string; text: string }> => ({
  status: (await page.page.getAttribute('[data-figure="answer"]', 'data-status')) ?? '',
  text: await figure(page.page, 'answer'),
});

async function click(command: string): Promise<{ status: string; text: string }> {
  await page.page.evaluate('document.querySelector(\'[data-figure="answer"]\').removeAttribute("data-status")');
  await page.page.click(`button[data-command="${command}"]`);
  await page.page.waitForSelector('[data-figure="answer"][data-status]', { timeout: 15_000 });
  return answer();
}

test('the page shows the rollout as it starts', async () => {
  page = await openPage(b, `${controller.baseUrl}/`);
  await nextUpdates(page.page, 2);
  const points = Number(await page.page.getAttribute('#chart-weight', 'data-points'));
  assert.ok(points >= 2, `the weight chart has the ramp so far: ${points} points`);
  assert.equal(await page.page.locator('.steps li').count(), 7);
});

test('the buttons refuse without the token: 401, the rollout goes on', async () => {
  const r = await click('pause');
  assert.equal(r.status, '401', r.text);
  assert.match(r.text, /missing or wrong bearer token/);
  assert.notEqual((await controller.status()).phase, 'paused');
});

type Full = RolloutStatus & { steps: number[]; failureLimit: number };

test('pause with the token holds the rollout; every figure equals GET /v1/rollout', async () => {
  await page.page.fill('#token', ADMIN);
  const r = await click('pause');
  assert.equal(r.status, '202', r.text);
  const s = await waitFor('the phase to be paused', async () => {
    const st = (await controller.status()) as Full;
    return st.phase === 'paused' ? st : undefined;
  }, 10_000, 50) as Full;
  await nextUpdates(page.page, 2);
  const p = page.page;
  assert.equal(await figure(p, 'phase'), 'paused');
  assert.equal(parseShown(await figure(p, 'weight')), s.weight);
  assert.equal(await figure(p, 'step'), `${s.step}/${s.steps.length}`);
  assert.equal(await figure(p, 'failures'), `${s.failures}/${s.failureLimit}`);
  assert.equal(await p.getAttribute('.steps li[aria-current="step"]', 'data-step'), String(s.step), 'the current step is marked');
  // The token is held by the tab only: not in storage, not in a cookie, not in the URL.
  const kept = String(await p.evaluate('JSON.stringify([localStorage, sessionStorage, document.cookie, location.href])'));
  assert.ok(!kept.includes(ADMIN), kept);
});

test('resume: the next judgement shows each check against its bound, now and per step', async () => {
  assert.equal((await click('resume')).status, '202');
  const judged = await waitFor('a judgement', async () => (await controller.status()).history.find((h) => h.event === 'passed'), 60_000, 100);
  assert.ok(judged);
  await nextUpdates(page.page, 2);
  const s = await controller.status();
  const check = s.checks.find((c) => c.name === CHECK);
  assert.ok(check && check.value !== null, JSON.stringify(s.checks));
  assert.equal(parseShown(await figure(page.page, `check:${CHECK}`)), Math.round(check.value * 1e4) / 1e4);
  // Per step: the value judged at that step against its bound.
  assert.match(await figure(page.page, `step-check:${judged.step}:${CHECK}`), /^[\d.]+ ≤ 0\.5 ✓$/);
  await screenshot(page.page, dir, 'rollout-page');
  // Held again, so that the promotion below is the page's doing.
  assert.equal((await click('pause')).status, '202');
});

test('promote with the token: the rollout ends promoted and the page says so', async () => {
  assert.equal((await click('promote')).status, '202');
  await waitFor('the phase to be promoted', async () => (await controller.status()).phase === 'promoted', 10_000, 50);
  await nextUpdates(page.page, 2);
  assert.equal(await figure(page.page, 'phase'), 'promoted');
  assert.equal(parseShown(await figure(page.page, 'weight')), 100);
  assert.equal(await page.page.locator('.steps li.done').count(), 7, 'every step done');
  assert.equal(await page.page.isDisabled('button[data-command="abort"]'), true, 'no command after the end');
  await screenshot(page.page, dir, 'rollout-page-promoted');
  // The one console error allowed: the browser's own line for the refused request (401) of the test above.
  const others = page.errors.filter((e) => !/status of 401/.test(e));
  assert.deepEqual(others, [], 'no other console error');
  assert.equal(page.errors.length - others.length, 1, page.errors.join('\n'));
});

test('every message published is on the blue or green queue', async () => {
  producing = false;
  await traffic;
  await waitFor('the router to drain its source', async () => (await depthOf(router.baseUrl, 'pc.ingress')) === 0, 20_000);
  const [blue = -1, green = -1, dead = -1] = await Promise.all(['pc.blue', 'pc.green', 'pc.dead'].map((q) => depthOf(router.baseUrl, q)));
  assert.equal(blue + green, sent, `blue ${blue} + green ${green} = ${sent} sent`);
  assert.equal(dead, 0);
  assert.ok(green > 0, 'green got messages during the ramp');
});
