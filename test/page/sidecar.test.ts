// The sidecar's status page in a real browser (chromium, test/support/browser.ts):
// a real turnout process under traffic (embedded broker, a real app that fails
// some messages, a translator step, a deferred version), the page open while
// messages flow. The chart must update, and once the traffic has settled
// every figure the page shows must equal what /metrics and the broker say.
// Every message is accounted for (app, dead-letter queue, deferred, green).

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { histogramQuantile } from '../../src/rollout/judge.ts';
import { startApp, type TestApp } from '../support/app.ts';
import { figure, launchBrowser, nextUpdates, openPage, parseShown, screenshot, type TestBrowser, type WatchedPage } from '../support/browser.ts';
import { metricValue, scrape } from '../support/metrics.ts';
import { depthOf, publishVia, startTurnout, type TurnoutProcess } from '../support/process.ts';
import { sleep, waitFor } from '../support/wait.ts';

const ADMIN = 'page-test-admin-token-5f2c';
const dir = mkdtempSync(join(tmpdir(), 'turnout-page-sidecar-'));
let app: TestApp;
let t: TurnoutProcess;
let b: TestBrowser;

const MESSAGES = 90;
const sent = { blue: [] as string[], green: [] as string[] };
// Every 9th message fails at the app (dead-lettered after 2 attempts), message 5 is v9 (no chain: deferred), even ones are v2 (translated 2->1).
const kindOf = (i: number): 'fail' | 'v9' | 'v1' | 'v2' => (i === 5 ? 'v9' : i % 9 === 0 ? 'fail' : i % 2 === 0 ? 'v2' : 'v1');

before(async () => {
  app = await startApp((d) => (d.body.toString().includes('"fail":true') ? 500 : 200));
  const steps = join(dir, 'steps.yaml');
  // 2->1 is in the compiled subset; 7->8 ($sort) is not, so it runs on the reference evaluator (no message uses it).
  writeFileSync(steps, `"2->1": '$merge([$sift($, function($v,$k){$k != "contact"}), {"email": contact.email}])'\n"7->8": '$sort(items)'\n`);
  t = await startTurnout({
    TURNOUT_SOURCE: 'page.orders.blue',
    TURNOUT_APP_URL: app.url,
    TURNOUT_BLUE: 'page.orders.blue',
    TURNOUT_GREEN: 'page.orders.green',
    TURNOUT_GREEN_WEIGHT: '30',
    TURNOUT_DLQ: 'page.orders.dead',
    TURNOUT_ACCEPT: '1',
    TURNOUT_TRANSLATORS: steps,
    TURNOUT_MAX_ATTEMPTS: '2',
    TURNOUT_RETRY_BACKOFF: '0',
    TURNOUT_DEFER_DELAY: '600000',
    TURNOUT_ADMIN_TOKEN: ADMIN,
  });
  b = await launchBrowser();
});

after(async () => {
  await b?.close();
  await t?.kill();
  await app?.close();
  rmSync(dir, { recursive: true, force: true });
});

async function send(i: number): Promise<void> {
  const kind = kindOf(i);
  const version = kind === 'v9' ? '9' : kind === 'v2' ? '2' : '1';
  const body = kind === 'v2' ? { n: i, contact: { email: `c${i}@example.com` } } : { n: i, email: `c${i}@example.com`, ...(kind === 'fail' ? { fail: true } : {}) };
  const r = await publishVia(t.baseUrl, JSON.stringify(body), { 'x-schema-version': version, 'x-turnout-message-id': `m${i}`, 'x-turnout-key': `k${i}` });
  assert.equal(r.status, 202, JSON.stringify(r.json));
  (r.json.queue === 'page.orders.green' ? sent.green : sent.blue).push(`m${i}`);
}

let page: WatchedPage;

test('the page updates its chart while messages flow', async () => {
  page = await openPage(b, `${t.baseUrl}/`);
  await nextUpdates(page.page, 1);
  const points = async (): Promise<number> => Number(await page.page.getAttribute('#chart-version', 'data-points'));
  const before = await points();
  for (let i = 0; i < MESSAGES; i++) {
    await send(i);
    await sleep(20);
  }
  await nextUpdates(page.page, 2);
  const afterTraffic = await points();
  assert.ok(afterTraffic > before, `the chart should have gained points: ${before} → ${afterTraffic}`);
  // Some rate was drawn for v1 (messages arrived between two reads).
  const rates = await page.page.$$eval('#chart-version polyline', (ls) => ls.map((l) => l.getAttribute('points') ?? ''));
  assert.ok(rates.length >= 2, `a line per version, got ${rates.length}`);
  await screenshot(page.page, dir, 'status-page');
});

test('every message is accounted for: app, dead-letter queue, deferred, green queue', async () => {
  const fails = sent.blue.filter((id) => kindOf(Number(id.slice(1))) === 'fail').length;
  const deferred = sent.blue.includes('m5') ? 1 : 0;
  await waitFor('the blue messages to settle', async () => app.accepted.size + (await depthOf(t.baseUrl, 'page.orders.dead')) === sent.blue.length - deferred, 20_000);
  assert.equal(await depthOf(t.baseUrl, 'page.orders.dead'), fails);
  assert.equal(await depthOf(t.baseUrl, 'page.orders.green'), sent.green.length);
  for (const id of sent.blue) {
    const k = kindOf(Number(id.slice(1)));
    if (k === 'v1' || k === 'v2') assert.equal(app.accepted.get(id)?.length, 1, `${id} delivered once`);
  }
  assert.equal(sent.blue.length + sent.green.length, MESSAGES);
  assert.ok(sent.green.length > 0 && sent.blue.length > 0, `both colors got messages: ${sent.blue.length}/${sent.green.length}`);
});

test('the figures shown equal /metrics and the broker', async () => {
  await nextUpdates(page.page, 2);
  const m = await scrape(t.baseUrl);
  const p = page.page;
  assert.equal(parseShown(await figure(p, 'weight')), metricValue(m, 'turnout_green_weight'));
  assert.equal(parseShown(await figure(p, 'inflight')), metricValue(m, 'turnout_inflight_messages'));
  for (const v of ['1', '2', '9']) assert.equal(parseShown(await figure(p, `received:${v}`)), metricValue(m, 'turnout_messages_received_total', { version: v }), `received v${v}`);
  assert.equal(parseShown(await figure(p, 'received')), metricValue(m, 'turnout_messages_received_total'));
  assert.equal(parseShown(await figure(p, 'delivered')), metricValue(m, 'turnout_messages_delivered_total'));
  for (const c of ['blue', 'green']) assert.equal(parseShown(await figure(p, `routed:${c}`)), metricValue(m, 'turnout_messages_routed_total', { color: c }), `routed ${c}`);
  assert.equal(parseShown(await figure(p, 'dead:max-attempts')), metricValue(m, 'turnout_messages_dead_lettered_total', { reason: 'max-attempts' }));
  assert.equal(parseShown(await figure(p, 'dead-lettered')), metricValue(m, 'turnout_messages_dead_lettered_total'));
  assert.equal(parseShown(await figure(p, 'deferred:9')), metricValue(m, 'turnout_messages_deferred_total', { version: '9' }));
  assert.equal(parseShown(await figure(p, 'deferred-waiting')), sent.blue.includes('m5') ? 1 : 0);
  for (const q of ['page.orders.green', 'page.orders.dead']) assert.equal(parseShown(await figure(p, `depth:${q}`)), await depthOf(t.baseUrl, q), `depth of ${q}`);
  // The source's row splits the embedded broker's depth (GET /v1/queues counts delayed copies too) into ready and deferred.
  const source = parseShown(await figure(p, 'depth:page.orders.blue')) + parseShown(await figure(p, 'queue-deferred:page.orders.blue'));
  assert.equal(source, await depthOf(t.baseUrl, 'page.orders.blue'), 'depth + deferred of the source');
  assert.equal(await figure(p, 'engine:2->1'), 'compiled');
  assert.equal(await figure(p, 'engine:7->8'), 'reference');
  // Latency: the page's p50/p99 are the histogram's quantiles, as Prometheus computes them.
  const buckets = [...m.matchAll(/^turnout_delivery_duration_seconds_bucket\{le="([^"]+)"\} (\S+)$/gm)].map((x) => ({ le: x[1] === '+Inf' ? Infinity : Number(x[1]), count: Number(x[2]) }));
  for (const [q, name] of [[0.5, 'p50'], [0.99, 'p99']] as const) {
    const expected = histogramQuantile(q, buckets) * 1000;
    // The page writes milliseconds with two decimals below 10 ms, whole ones above.
    const rounded = expected < 10 ? Math.round(expected * 100) / 100 : Math.round(expected);
    assert.equal(parseShown(await figure(p, name)), rounded, `${name}: /metrics gives ${expected} ms`);
  }
  // The dead-letters appear among the recent errors; the admin token appears nowhere.
  assert.match((await p.locator('#errors').textContent()) ?? '', /dead-lettered/);
  assert.ok(!(await p.content()).includes(ADMIN), 'the page shows no secret');
  assert.ok(!(await (await fetch(`${t.baseUrl}/v1/status`)).text()).includes(ADMIN), '/v1/status carries no secret');
  await screenshot(p, dir, 'status-page-settled');
  assert.deepEqual(page.errors, [], 'no console errors');
});

test('readable in a narrow window and in dark mode', async () => {
  const narrow = await openPage(b, `${t.baseUrl}/`, { width: 380, height: 800, dark: true });
  await nextUpdates(narrow.page, 2);
  const { scroll, inner, bg } = await narrow.page.evaluate(
    '({ scroll: document.documentElement.scrollWidth, inner: window.innerWidth, bg: getComputedStyle(document.body).backgroundColor })',
  ) as { scroll: number; inner: number; bg: string };
  assert.ok(scroll <= inner, `no horizontal scrolling of the page at 380 px: ${scroll} > ${inner}`);
  assert.equal(bg, 'rgb(17, 18, 20)', 'the dark background applies');
  await screenshot(narrow.page, dir, 'status-page-narrow-dark');
  assert.deepEqual(narrow.errors, [], 'no console errors');
});

test('the page is read-only: GET only, and /v1/status answers JSON', async () => {
  assert.equal((await fetch(`${t.baseUrl}/`, { method: 'POST' })).status, 405);
  const r = await fetch(`${t.baseUrl}/`);
  assert.match(r.headers.get('content-security-policy') ?? '', /default-src 'none'/);
  assert.equal((await fetch(`${t.baseUrl}/v1/status`, { method: 'PUT' })).status, 405);
});
