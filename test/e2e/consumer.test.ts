// The consumer role end to end: a real turnout process on the embedded
// broker delivering to a real HTTP app. Each row of docs/reference.md's delivery
// table is one message kind; every message is accounted for by id.
//
// Dead-letters are made visible by id: the process also consumes its own
// dead-letter queue (TURNOUT_SOURCE=in,in.dlq with TURNOUT_DLQ={source}.dlq),
// so each dead-lettered copy reaches the app from source "in.dlq" with its
// reason headers, and the app accepts it.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startApp, type Delivery, type TestApp } from '../support/app.ts';
import { metricValue, scrape } from '../support/metrics.ts';
import { depthOf, publishVia, startTurnout, type TurnoutProcess } from '../support/process.ts';
import { Tally } from '../support/tally.ts';
import { sleep, waitFor } from '../support/wait.ts';
import { freePort } from '../support/ports.ts';

type Act = 'ok' | 'ok201' | 'ok204' | 'reject400' | 'reject404' | 'reject422' | 'fail500' | 'fail503' | 'flaky408' | 'flaky429' | 'flaky502' | 'unsupported' | 'slow-then-ok';

const actOf = (d: Delivery): Act => (JSON.parse(d.body.toString()) as { act: Act }).act;

/** The app's answer per act; "flaky" acts fail on attempt 1 only. */
function behave(d: Delivery): number | { status: number; delayMs: number } {
  if (d.source === 'in.dlq') return 200; // a dead-lettered copy: accept, so it is accounted for
  switch (actOf(d)) {
    case 'ok': return 200;
    case 'ok201': return 201;
    case 'ok204': return 204;
    case 'reject400': return 400;
    case 'reject404': return 404;
    case 'reject422': return 422;
    case 'fail500': return 500;
    case 'fail503': return 503;
    case 'flaky408': return d.attempt === 1 ? 408 : 200;
    case 'flaky429': return d.attempt === 1 ? 429 : 200;
    case 'flaky502': return d.attempt === 1 ? 502 : 200;
    case 'unsupported': return 415;
    case 'slow-then-ok': return d.attempt === 1 ? { status: 200, delayMs: 1500 } : 200;
  }
}

describe('delivery status table (one message kind per row)', () => {
  let app: TestApp;
  let t: TurnoutProcess;
  const ids = new Map<string, Act>();
  const tally = new Tally();

  before(async () => {
    app = await startApp(behave);
    t = await startTurnout({
      TURNOUT_SOURCE: 'in,in.dlq',
      TURNOUT_DLQ: '{source}.dlq',
      TURNOUT_APP_URL: app.url,
      TURNOUT_MAX_ATTEMPTS: '3',
      TURNOUT_RETRY_BACKOFF: '20',
      TURNOUT_DEFER_DELAY: '100',
      TURNOUT_MAX_DEFERRALS: '2',
      TURNOUT_DELIVERY_TIMEOUT: '500',
    });
    const acts: Act[] = ['ok', 'ok201', 'ok204', 'reject400', 'reject404', 'reject422', 'fail500', 'fail503', 'flaky408', 'flaky429', 'flaky502', 'unsupported', 'slow-then-ok'];
    for (const act of acts) {
      for (let i = 0; i < 3; i++) {
        const id = `${act}-${i}`;
        ids.set(id, act);
        const r = await publishVia(t.baseUrl, JSON.stringify({ act, i }), { 'x-turnout-message-id': id, 'x-trace': `trace-${id}` }, 'in');
        assert.equal(r.status, 202, JSON.stringify(r.json));
        assert.deepEqual(r.json, { id, queue: 'in' });
      }
    }
    // Wait until every message has its final answer: accepted from "in" or accepted from "in.dlq".
    await waitFor('every message settled', () => [...ids.keys()].every((id) => app.accepted.has(id)), 20_000);
    await sleep(300); // nothing more may arrive
    for (const d of app.deliveries) tally.record(`${d.source}:${d.attempt}`, d.id);
  });
  after(async () => {
    const code = await t.stop();
    await app.close();
    assert.equal(code, 0);
  });

  const fromIn = (id: string): Delivery[] => app.deliveries.filter((d) => d.id === id && d.source === 'in');
  const dlqCopies = (id: string): Delivery[] => app.deliveries.filter((d) => d.id === id && d.source === 'in.dlq');
  const forAct = (act: Act): string[] => [...ids].filter(([, a]) => a === act).map(([id]) => id);

  test('every message ended in exactly one final place, once', () => {
    assert.deepEqual(tally.missing(ids.keys()), []);
    for (const id of ids.keys()) {
      const accepted = app.accepted.get(id) ?? [];
      assert.equal(accepted.length, 1, `${id} accepted ${accepted.length} times: ${JSON.stringify(tally.placesOf(id))}`);
    }
  });

  for (const act of ['ok', 'ok201', 'ok204'] as const) {
    test(`2xx (${act}) → ack: delivered once, attempt 1, never dead-lettered`, () => {
      for (const id of forAct(act)) {
        assert.deepEqual(tally.placesOf(id), { 'in:1': 1 });
        const d = fromIn(id)[0] as Delivery;
        assert.equal(d.headers['x-turnout-message-id'], id);
        assert.equal(d.headers['x-turnout-source'], 'in');
        assert.equal(d.headers['x-trace'], `trace-${id}`);
        assert.equal(d.headers['content-type'], 'application/json');
      }
    });
  }

  for (const act of ['reject400', 'reject404', 'reject422'] as const) {
    test(`other 4xx (${act}) → dead-letter at once (rejected), original payload`, () => {
      for (const id of forAct(act)) {
        assert.deepEqual(tally.placesOf(id), { 'in:1': 1, 'in.dlq:1': 1 });
        const copy = dlqCopies(id)[0] as Delivery;
        assert.equal(copy.headers['x-turnout-dlq-reason'], 'rejected');
        assert.equal(copy.headers['x-turnout-attempts'], '1');
        // On delivery, x-turnout-source names the queue the copy is consumed from now;
        // where it failed travels as x-turnout-dlq-source.
        assert.equal(copy.headers['x-turnout-source'], 'in.dlq');
        assert.equal(copy.headers['x-turnout-dlq-source'], 'in');
        assert.match(String(copy.headers['x-turnout-error']), /app answered 4\d\d/);
        assert.ok(!Number.isNaN(Date.parse(String(copy.headers['x-turnout-failed-at']))));
        assert.deepEqual(copy.body, fromIn(id)[0]?.body);
      }
    });
  }

  for (const act of ['fail500', 'fail503'] as const) {
    test(`5xx (${act}) → retried TURNOUT_MAX_ATTEMPTS times, then dead-letter (max-attempts)`, () => {
      for (const id of forAct(act)) {
        assert.deepEqual(tally.placesOf(id), { 'in:1': 1, 'in:2': 1, 'in:3': 1, 'in.dlq:1': 1 });
        const copy = dlqCopies(id)[0] as Delivery;
        assert.equal(copy.headers['x-turnout-dlq-reason'], 'max-attempts');
        assert.equal(copy.headers['x-turnout-attempts'], '3');
      }
    });
  }

  for (const act of ['flaky408', 'flaky429', 'flaky502'] as const) {
    test(`${act.slice(5)} → retry with backoff, delivered on attempt 2`, () => {
      for (const id of forAct(act)) {
        assert.deepEqual(tally.placesOf(id), { 'in:1': 1, 'in:2': 1 });
        const [a1, a2] = fromIn(id) as [Delivery, Delivery];
        assert.ok(a2.at - a1.at >= 10, `backoff of ${a2.at - a1.at} ms between attempts`);
      }
    });
  }

  test('timeout → retry: the slow first attempt is abandoned, attempt 2 delivers', () => {
    for (const id of forAct('slow-then-ok')) {
      // The app accepted only attempt 2; attempt 1 was cut at TURNOUT_DELIVERY_TIMEOUT.
      assert.equal(fromIn(id).length, 2);
      assert.equal(app.accepted.get(id)?.[0]?.attempt, 2);
      assert.equal(dlqCopies(id).length, 0);
    }
  });

  test('415 → deferred (x-turnout-deferrals counts), then dead-letter (unsupported-version) after TURNOUT_MAX_DEFERRALS', () => {
    for (const id of forAct('unsupported')) {
      const seen = fromIn(id);
      assert.equal(seen.length, 3, 'first try + 2 deferrals');
      assert.deepEqual(seen.map((d) => d.headers['x-turnout-deferrals'] ?? '0'), ['0', '1', '2']);
      assert.ok((seen[1] as Delivery).at - (seen[0] as Delivery).at >= 90, 'seen again only after TURNOUT_DEFER_DELAY');
      const copy = dlqCopies(id)[0] as Delivery;
      assert.equal(copy.headers['x-turnout-dlq-reason'], 'unsupported-version');
      assert.equal(copy.headers['x-turnout-deferrals'], undefined, 'the deferral count does not follow it');
    }
  });

  test('metrics count what happened', async () => {
    const m = await scrape(t.baseUrl);
    assert.equal(metricValue(m, 'turnout_messages_delivered_total', { source: 'in' }), 3 * 7);
    assert.equal(metricValue(m, 'turnout_messages_dead_lettered_total', { source: 'in', reason: 'rejected' }), 9);
    assert.equal(metricValue(m, 'turnout_messages_dead_lettered_total', { source: 'in', reason: 'max-attempts' }), 6);
    assert.equal(metricValue(m, 'turnout_messages_dead_lettered_total', { source: 'in', reason: 'unsupported-version' }), 3);
    assert.equal(metricValue(m, 'turnout_messages_deferred_total', { source: 'in', version: '1' }), 6);
    assert.equal(metricValue(m, 'turnout_messages_received_total', { source: 'in', version: '1' }), 39 + 6);
    assert.equal(metricValue(m, 'turnout_messages_delivered_total', { source: 'in.dlq' }), 18);
    assert.ok(metricValue(m, 'turnout_delivery_duration_seconds_count') >= 39);
    assert.equal(metricValue(m, 'turnout_inflight_messages'), 0);
    assert.equal(metricValue(m, 'turnout_broker_up'), 1);
  });

  test('nothing is left on the broker', async () => {
    for (const q of ['in', 'in.dlq', 'in.dlq.dlq']) {
      const d = (await (await fetch(`${t.baseUrl}/v1/queues/${q}`)).json()) as { depth: number; inflight: number };
      assert.deepEqual({ q, depth: d.depth, inflight: d.inflight }, { q, depth: 0, inflight: 0 });
    }
  });
});


test('at start, consuming waits until the app accepts connections (no attempts spent); /readyz says why', async () => {
  const port = await freePort();
  const t = await startTurnout({ TURNOUT_SOURCE: 'in', TURNOUT_DLQ: 'dead', TURNOUT_APP_URL: `http://127.0.0.1:${port}/m` }, { waitReady: false });
  let app: TestApp | undefined;
  try {
    await waitFor('waiting for the app', async () => {
      const r = await fetch(`${t.baseUrl}/readyz`);
      return r.status === 503 && ((await r.json()) as { reason: string }).reason === 'waiting for the app';
    });
    for (let i = 0; i < 5; i++) assert.equal((await publishVia(t.baseUrl, `{"i":${i}}`, { 'x-turnout-message-id': `w${i}` }, 'in')).status, 202);
    await sleep(300);
    app = await startApp(() => 200, port);
    const started = app;
    await waitFor('5 delivered', () => started.accepted.size === 5, 15_000);
    await waitFor('ready', async () => (await fetch(`${t.baseUrl}/readyz`)).status === 200);
    await sleep(200);
    for (let i = 0; i < 5; i++) assert.equal(app.accepted.get(`w${i}`)?.length, 1);
    assert.ok(app.deliveries.every((d) => d.attempt === 1), 'no attempt was spent before the app listened');
  } finally {
    assert.equal(await t.stop(), 0);
    await app?.close();
  }
});

test('connection refused mid-stream → retried until the app is back, then delivered once', async () => {
  const port = await freePort();
  let app = await startApp(() => 200, port);
  const t = await startTurnout({
    TURNOUT_SOURCE: 'in',
    TURNOUT_DLQ: 'dead',
    TURNOUT_APP_URL: `http://127.0.0.1:${port}/m`,
    TURNOUT_MAX_ATTEMPTS: '8',
    TURNOUT_RETRY_BACKOFF: '100',
  });
  try {
    await app.close();
    for (let i = 0; i < 5; i++) assert.equal((await publishVia(t.baseUrl, `{"i":${i}}`, { 'x-turnout-message-id': `m${i}` }, 'in')).status, 202);
    await sleep(400);
    app = await startApp(() => 200, port);
    const back = app;
    await waitFor('5 delivered', () => back.accepted.size === 5, 15_000);
    await sleep(200);
    for (let i = 0; i < 5; i++) assert.equal(app.accepted.get(`m${i}`)?.length, 1);
    assert.ok(app.deliveries.every((d) => d.attempt > 1), 'the first attempts found no app');
    assert.equal(await depthOf(t.baseUrl, 'dead'), 0);
  } finally {
    assert.equal(await t.stop(), 0);
    await app.close();
  }
});

test('at most TURNOUT_CONCURRENCY deliveries at once; all 30 delivered once', async () => {
  let active = 0;
  let peak = 0;
  const app = await startApp(async () => {
    active++;
    peak = Math.max(peak, active);
    await sleep(60);
    active--;
    return 200;
  });
  const t = await startTurnout({ TURNOUT_SOURCE: 'in', TURNOUT_DLQ: 'dead', TURNOUT_APP_URL: app.url, TURNOUT_CONCURRENCY: '3' });
  try {
    await Promise.all(Array.from({ length: 30 }, (_, i) => publishVia(t.baseUrl, `{"i":${i}}`, { 'x-turnout-message-id': `c${i}` }, 'in')));
    await waitFor('30 delivered', () => app.accepted.size === 30, 15_000);
    assert.equal(peak, 3, `peak concurrency ${peak}`);
    assert.ok([...app.accepted.values()].every((l) => l.length === 1));
  } finally {
    assert.equal(await t.stop(), 0);
    await app.close();
  }
});
