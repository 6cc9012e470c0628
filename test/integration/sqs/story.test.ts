// The stories end to end on SQS (fauxqs): real `turnout` processes, real
// HTTP apps, messages accounted for by id — where each one was accepted and
// how often, and what is left on every queue.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { SendMessageCommand } from '@aws-sdk/client-sqs';
import { startApp, type Delivery } from '../../support/app.ts';
import { metricValue, scrape } from '../../support/metrics.ts';
import { publishVia, runTurnout, startTurnout, type TurnoutProcess } from '../../support/process.ts';
import { Tally } from '../../support/tally.ts';
import { sleep, waitFor } from '../../support/wait.ts';
import { startEmulator, type Emulator } from './fauxqs.ts';

const empty = { visible: 0, inflight: 0, delayed: 0 };

describe('sqs stories', () => {
  let emu: Emulator;
  const running: TurnoutProcess[] = [];
  const turnout = async (env: Record<string, string>): Promise<TurnoutProcess> => {
    const t = await startTurnout({ TURNOUT_BROKER: 'sqs', ...emu.env, ...env });
    running.push(t);
    return t;
  };

  before(async () => {
    // Its own process: turnout processes killed at the end leave long polls open on it, which an in-process emulator would wait out.
    emu = await startEmulator({ mode: 'child' });
  });
  /** The last deletes may land a moment after the app answered. */
  const assertEmpty = async (name: string): Promise<void> => {
    await waitFor(`${name} to be empty`, async () => JSON.stringify(await emu.counts(name)) === JSON.stringify(empty), 5_000, 50).catch(() => {});
    assert.deepEqual(await emu.counts(name), empty, `${name} is empty`);
  };

  after(async () => {
    for (const t of running) await t.kill();
    await emu.stop();
  });

  test('blue/green migration: router splits, green failures dead-letter to blue, each message accepted by exactly one side', async () => {
    const src = emu.name('orders');
    const blue = emu.name('orders-blue');
    const green = emu.name('orders-green');
    const blueDlq = emu.name('orders-blue-dlq');
    const srcUrl = await emu.createQueue(src);
    for (const q of [blue, green, blueDlq]) await emu.createQueue(q);

    const failsOnGreen = (d: Delivery): boolean => (JSON.parse(d.body.toString()) as { n: number }).n % 7 === 0;
    const blueApp = await startApp(() => 200);
    // The new consumer cannot handle some messages (422 → dead-lettered at once), and is flaky on others (503 once).
    const greenApp = await startApp((d) => (failsOnGreen(d) ? 422 : d.attempt === 1 && d.body.toString().includes('"flaky":true') ? 503 : 200));
    try {
      const router = await turnout({ TURNOUT_SOURCE: src, TURNOUT_BLUE: blue, TURNOUT_GREEN: green, TURNOUT_GREEN_WEIGHT: '50', TURNOUT_ROUTE_KEY: 'json:customer' });
      const blueSide = await turnout({ TURNOUT_SOURCE: blue, TURNOUT_APP_URL: blueApp.url, TURNOUT_DLQ: blueDlq });
      const greenSide = await turnout({ TURNOUT_SOURCE: green, TURNOUT_APP_URL: greenApp.url, TURNOUT_DLQ: blue, TURNOUT_RETRY_BACKOFF: '20' });

      const ids = new Set<string>();
      // A legacy producer writes straight to SQS (ids are SQS MessageIds) …
      for (let n = 0; n < 120; n++) {
        const body = JSON.stringify({ n, customer: `c${n % 40}`, flaky: n % 5 === 0 });
        const out = await emu.client.send(new SendMessageCommand({ QueueUrl: srcUrl, MessageBody: body, MessageAttributes: { 'x-schema-version': { DataType: 'String', StringValue: '1' } } }));
        ids.add(out.MessageId as string);
      }
      // … a new one publishes through turnout, into the same source.
      for (let n = 120; n < 160; n++) {
        const r = await publishVia(router.baseUrl, JSON.stringify({ n, customer: `c${n % 40}` }), { 'x-schema-version': '1' }, src);
        assert.equal(r.status, 202, JSON.stringify(r.json));
        ids.add(String(r.json.id));
      }

      const tally = new Tally();
      await waitFor('every message accepted by an app', () => {
        return [...ids].every((id) => blueApp.accepted.has(id) || greenApp.accepted.has(id));
      }, 60_000, 100);
      await sleep(1_500);
      for (const [id, list] of blueApp.accepted) for (const _ of list) tally.record('blue', id);
      for (const [id, list] of greenApp.accepted) for (const _ of list) tally.record('green', id);

      assert.deepEqual(tally.missing(ids), []);
      assert.deepEqual(tally.duplicates(), [], 'each message accepted exactly once, on one side');
      const greenSeen = greenApp.deliveries;
      const greenFailed = new Set(greenSeen.filter(failsOnGreen).map((d) => d.id));
      assert.ok(tally.count('green') > 30 && tally.count('blue') > 30, JSON.stringify(tally.summary()));
      assert.ok(greenFailed.size > 0, 'some messages failed on green');
      for (const id of greenFailed) {
        assert.deepEqual(tally.placesOf(id), { blue: 1 }, `${id} failed on green and must be processed by blue`);
        const d = blueApp.accepted.get(id)?.[0];
        assert.equal(d?.headers['x-turnout-dlq-reason'], 'rejected');
      }
      // Sticky: one customer's messages that green handled all went green.
      const sideOfCustomer = new Map<string, Set<string>>();
      for (const d of [...blueApp.deliveries, ...greenSeen]) {
        if (d.headers['x-turnout-dlq-reason'] !== undefined) continue;
        const c = (JSON.parse(d.body.toString()) as { customer: string }).customer;
        const set = sideOfCustomer.get(c) ?? new Set<string>();
        set.add(d.source);
        sideOfCustomer.set(c, set);
      }
      for (const [c, sides] of sideOfCustomer) assert.equal(sides.size, 1, `customer ${c} was routed to both sides`);

      const routes = (await (await fetch(`${router.baseUrl}/v1/routes`)).json()) as { counts: { blue: number; green: number } };
      assert.equal(routes.counts.blue + routes.counts.green, 160);
      const q = (await (await fetch(`${router.baseUrl}/v1/queues/${src}`)).json()) as Record<string, unknown>;
      assert.deepEqual(q, { queue: src, depth: 0, inflight: 0 });
      for (const name of [src, blue, green, blueDlq]) await assertEmpty(name);
      assert.equal(metricValue(await scrape(greenSide.baseUrl), 'turnout_messages_dead_lettered_total', { source: green, reason: 'rejected' }), greenFailed.size);
      assert.equal(metricValue(await scrape(blueSide.baseUrl), 'turnout_broker_up'), 1);
      // A clean drain exits 0 (idle consumers wait for their long polls to answer, up to 20 s).
      assert.deepEqual(await Promise.all([router, blueSide, greenSide].map((t) => t.stop())), [0, 0, 0]);
    } finally {
      await blueApp.close();
      await greenApp.close();
    }
  });

  test('long work: jobs longer than the queue visibility timeout run once, with a second turnout competing', async () => {
    const q = emu.name('reports');
    await emu.createQueue(q, { VisibilityTimeout: '2' });
    const app = await startApp(() => ({ status: 200, delayMs: 6_000 })); // 3 × VisibilityTimeout
    try {
      const dlq = emu.name('reports-dlq');
      await emu.createQueue(dlq);
      const t1 = await turnout({ TURNOUT_SOURCE: q, TURNOUT_APP_URL: app.url, TURNOUT_CONCURRENCY: '2', TURNOUT_DLQ: dlq });
      const t2 = await turnout({ TURNOUT_SOURCE: q, TURNOUT_APP_URL: app.url, TURNOUT_CONCURRENCY: '2', TURNOUT_DLQ: dlq });
      const ids: string[] = [];
      for (let i = 0; i < 3; i++) {
        const r = await publishVia(t1.baseUrl, JSON.stringify({ report: i }), { 'x-schema-version': '1' }, q);
        assert.equal(r.status, 202);
        ids.push(String(r.json.id));
      }
      await waitFor('three reports done', () => ids.every((id) => app.accepted.has(id)), 30_000, 100);
      await sleep(3_000); // a lapsed lease would show up as a second delivery now
      const tally = new Tally();
      for (const d of app.deliveries) tally.record('app', d.id);
      assert.deepEqual(tally.missing(ids), []);
      assert.deepEqual(tally.duplicates(), [], 'no report handed to a second consumer');
      await assertEmpty(q);
      await assertEmpty(dlq);
      for (const t of [t1, t2]) assert.ok(!t.logs().some((l) => String(l.msg).includes('lost the lease')), t.output());
    } finally {
      await app.close();
    }
  });

  test('FIFO: published through turnout with keys, delivered in order per key', async () => {
    const q = emu.name('ledger') + '.fifo';
    const dlq = emu.name('ledger-dlq') + '.fifo';
    await emu.createQueue(q);
    await emu.createQueue(dlq);
    const app = await startApp(() => ({ status: 200, delayMs: Math.floor(Math.random() * 15) }));
    try {
      const t = await turnout({ TURNOUT_SOURCE: q, TURNOUT_APP_URL: app.url, TURNOUT_CONCURRENCY: '8', TURNOUT_DLQ: dlq });
      const sent = new Map<string, string[]>();
      for (let i = 0; i < 20; i++) {
        for (const account of ['acc-1', 'acc-2', 'acc-3', 'acc-4']) {
          const r = await publishVia(t.baseUrl, JSON.stringify({ account, i }), { 'x-turnout-key': account, 'x-schema-version': '1' }, q);
          assert.equal(r.status, 202);
          sent.set(account, [...(sent.get(account) ?? []), String(r.json.id)]);
        }
      }
      await waitFor('80 delivered', () => app.accepted.size === 80, 30_000, 50);
      await sleep(500);
      for (const [account, ids] of sent) {
        const order = app.deliveries.filter((d) => (JSON.parse(d.body.toString()) as { account: string }).account === account).map((d) => d.id);
        assert.deepEqual(order, ids, `order for ${account}`);
      }
      assert.equal(app.deliveries.length, 80);
      await assertEmpty(q);
    } finally {
      await app.close();
    }
  });

  test("no TURNOUT_DLQ: the queue's RedrivePolicy takes refused messages; deferrals do not spend maxReceiveCount", async () => {
    const redriveDlq = emu.name('inbox-dlq');
    const q = emu.name('inbox');
    await emu.createQueueWithRedrive(q, redriveDlq, 2);
    const app = await startApp((d) => ((JSON.parse(d.body.toString()) as { bad?: boolean }).bad ? 400 : 200));
    try {
      const t = await turnout({ TURNOUT_SOURCE: q, TURNOUT_APP_URL: app.url, TURNOUT_ACCEPT: '1', TURNOUT_DEFER_DELAY: '1000', TURNOUT_MAX_DEFERRALS: '3' });
      assert.ok(t.logs().some((l) => String(l.msg).includes("queue's RedrivePolicy moves them") && l.maxReceiveCount === 2), 'says so at start');
      const good = await publishVia(t.baseUrl, '{"ok":true}', { 'x-schema-version': '1' }, q);
      const bad = await publishVia(t.baseUrl, '{"bad":true}', { 'x-schema-version': '1' }, q);
      const future = await publishVia(t.baseUrl, '{"v":3}', { 'x-schema-version': '3' }, q);
      for (const r of [good, bad, future]) assert.equal(r.status, 202);
      await waitFor('two in the redrive DLQ', async () => (await emu.counts(redriveDlq)).visible === 2, 20_000, 100);
      const dead = await emu.drain(redriveDlq);
      const byId = new Map(dead.map((m) => [m.id, m]));
      assert.deepEqual([...byId.keys()].sort(), [String(bad.json.id), String(future.json.id)].sort());
      // Three deferrals (three receives) happened before it was refused, with maxReceiveCount 2.
      assert.equal(byId.get(String(future.json.id))?.headers['x-turnout-deferrals'], '3');
      const tally = new Tally();
      for (const d of app.deliveries) tally.record('app', d.id);
      assert.deepEqual(tally.placesOf(String(good.json.id)), { app: 1 });
      assert.deepEqual(tally.placesOf(String(bad.json.id)), { app: 1 }, 'refused once; SQS redrive did the rest');
      assert.deepEqual(tally.placesOf(String(future.json.id)), {}, 'never sent to an app that does not accept v3');
      await assertEmpty(q);
    } finally {
      await app.close();
    }
  });

  test('drain deadline: the unfinished job goes back to SQS at once and another turnout takes it', async () => {
    const q = emu.name('jobs');
    const dlq = emu.name('jobs-dlq');
    await emu.createQueue(q); // VisibilityTimeout 30 s: a copy back within seconds was released, not lapsed
    await emu.createQueue(dlq);
    let slow = true;
    // Slow enough to outlast the 500 ms drain deadline; short enough not to hold the test process open at the end.
    const app = await startApp(() => (slow ? { status: 200, delayMs: 4_000 } : 200));
    try {
      const t1 = await turnout({ TURNOUT_SOURCE: q, TURNOUT_APP_URL: app.url, TURNOUT_DLQ: dlq, TURNOUT_DRAIN_TIMEOUT: '500' });
      const r = await publishVia(t1.baseUrl, '{"job":1}', { 'x-schema-version': '1' }, q);
      const id = String(r.json.id);
      await waitFor('the job in flight', () => app.active() === 1, 10_000);
      assert.equal(await t1.stop('SIGTERM'), 1, 'exit 1: the drain deadline passed');
      slow = false;
      const t2 = await turnout({ TURNOUT_SOURCE: q, TURNOUT_APP_URL: app.url, TURNOUT_DLQ: dlq });
      const before = Date.now();
      await waitFor('the job done by the second turnout', () => app.accepted.has(id), 10_000, 50);
      assert.ok(Date.now() - before < 10_000);
      assert.equal(app.deliveries.filter((d) => d.id === id).length, 2, 'cut short once, then done once');
      assert.equal(app.accepted.get(id)?.length, 1);
      await assertEmpty(q);
    } finally {
      await app.close();
    }
  });

  test('start-up: a missing source queue is exit code 2 with a clear message', async () => {
    const r = await runTurnout(['run'], { TURNOUT_BROKER: 'sqs', ...emu.env, TURNOUT_SOURCE: 'no-such-queue', TURNOUT_APP_URL: 'http://127.0.0.1:9/', TURNOUT_PORT: '0' });
    assert.equal(r.code, 2, r.stdout + r.stderr);
    assert.match(r.stdout + r.stderr, /no-such-queue.*does not exist/);
  });
});
