// The blue/green migration story on the real RabbitMQ, with real turnout
// processes:
//
//   producer -> /v1/publish/ingress -> ingress
//   router turnout: ingress -> blue | green (30 % of keys to green)
//   green consumer turnout -> v2 app that fails every message -> dead-letters to blue
//   blue consumer turnout -> v1 app, with a 2->1 translator
//
// Every produced message must be processed exactly once, by the v1 app, and
// nothing may stay behind in any queue. Then deferral through the delay queue
// end to end, and dead-lettering to the source's own dead-letter exchange.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startApp, type TestApp } from '../../support/app.ts';
import { publishVia, startTurnout, type TurnoutProcess } from '../../support/process.ts';
import { Tally } from '../../support/tally.ts';
import { sleep, waitFor } from '../../support/wait.ts';
import { rabbitShared } from './lock.ts';
import { AMQP_URL, TestRabbit } from './rabbit.ts';

const MESSAGES = 300;
const GREEN_WEIGHT = 30;

describe('amqp: stories with real turnout processes', () => {
  const rabbit = new TestRabbit('story');
  const procs: TurnoutProcess[] = [];
  const apps: TestApp[] = [];
  let release: () => void = () => {};
  let dir = '';

  before(async () => {
    release = await rabbitShared();
    dir = mkdtempSync(join(tmpdir(), 'turnout-amqp-story-'));
  });
  after(async () => {
    for (const p of procs) await p.kill();
    for (const a of apps) await a.close();
    await rabbit.teardown();
    rmSync(dir, { recursive: true, force: true });
    release();
  });

  test('router splits ingress by weight; green failures flow to blue; the v1 app processes each message exactly once', async () => {
    const ingress = await rabbit.queue('quorum', 'ingress');
    const blue = await rabbit.queue('quorum', 'blue');
    const green = await rabbit.queue('classic', 'green');
    const ingressDlq = await rabbit.queue('classic', 'ingress-dlq');
    const blueDlq = await rabbit.queue('classic', 'blue-dlq');
    const translators = join(dir, 'translators.yaml');
    writeFileSync(translators, [
      `"1->2": '$merge([$sift($, function($v,$k){$k != "email"}), {"contact": {"email": email}}])'`,
      `"2->1": '$merge([$sift($, function($v,$k){$k != "contact"}), {"email": contact.email}])'`,
      '',
    ].join('\n'));

    // The v2 app on green fails everything; the v1 app on blue takes only version 1 with an email field.
    const greenApp = await startApp(() => 500);
    const blueApp = await startApp((d) => {
      const body = JSON.parse(d.body.toString()) as { email?: unknown; contact?: unknown };
      return d.headers['x-schema-version'] === '1' && typeof body.email === 'string' && body.contact === undefined ? 200 : 400;
    });
    apps.push(greenApp, blueApp);

    const common = { TURNOUT_BROKER: AMQP_URL, TURNOUT_RETRY_BACKOFF: '10', TURNOUT_CONCURRENCY: '8' };
    const router = await startTurnout({ ...common, TURNOUT_SOURCE: ingress, TURNOUT_BLUE: blue, TURNOUT_GREEN: green, TURNOUT_GREEN_WEIGHT: String(GREEN_WEIGHT), TURNOUT_DLQ: ingressDlq });
    procs.push(router);
    const greenConsumer = await startTurnout({ ...common, TURNOUT_SOURCE: green, TURNOUT_APP_URL: greenApp.url, TURNOUT_ACCEPT: '2', TURNOUT_DLQ: blue, TURNOUT_MAX_ATTEMPTS: '2' });
    procs.push(greenConsumer);
    const blueConsumer = await startTurnout({ ...common, TURNOUT_SOURCE: blue, TURNOUT_APP_URL: blueApp.url, TURNOUT_ACCEPT: '1', TURNOUT_TRANSLATORS: translators, TURNOUT_DLQ: blueDlq });
    procs.push(blueConsumer);

    // Produce through the router's publish endpoint straight into ingress, ten at a time.
    const produced: string[] = [];
    for (let i = 0; i < MESSAGES; i += 10) {
      await Promise.all(Array.from({ length: 10 }, async (_, j) => {
        const n = i + j;
        const r = await publishVia(router.baseUrl, JSON.stringify({ n, name: `customer ${n}`, contact: { email: `c${n}@example.com` } }), {
          'x-schema-version': '2',
          'x-turnout-key': `customer-${n}`,
        }, ingress);
        assert.equal(r.status, 202, JSON.stringify(r.json));
        assert.equal(r.json.queue, ingress);
        produced.push(String(r.json.id));
      }));
    }
    assert.equal(new Set(produced).size, MESSAGES);

    await waitFor('every message processed by the v1 app', () => produced.every((id) => blueApp.accepted.has(id)), 60_000, 100);
    await sleep(1000); // anything that would arrive twice has time to show up

    const tally = new Tally();
    for (const d of greenApp.deliveries) tally.record('green-attempt', d.id);
    for (const [id, list] of blueApp.accepted) for (let k = 0; k < list.length; k++) tally.record('processed', id);
    assert.deepEqual(tally.missing(produced), []);
    const processedTwice = produced.filter((id) => (blueApp.accepted.get(id)?.length ?? 0) !== 1);
    assert.deepEqual(processedTwice, [], 'each message processed exactly once');
    assert.equal(blueApp.deliveries.length, MESSAGES, 'the v1 app got nothing it refused');
    assert.equal(greenApp.accepted.size, 0);

    // Green took its share, tried each twice, and handed every one back to blue.
    const viaGreen = tally.ids('green-attempt');
    const share = (viaGreen.size / MESSAGES) * 100;
    assert.ok(share > GREEN_WEIGHT - 12 && share < GREEN_WEIGHT + 12, `green got ${share.toFixed(1)} % for weight ${GREEN_WEIGHT}`);
    for (const id of viaGreen) assert.equal(tally.placesOf(id)['green-attempt'], 2, `green attempts for ${id}`);
    for (const id of produced) {
      const d = blueApp.accepted.get(id)?.[0];
      assert.ok(d);
      assert.equal(d.headers['x-turnout-translated-from'], '2');
      assert.equal(d.headers['x-turnout-key'], `customer-${(JSON.parse(d.body.toString()) as { n: number }).n}`);
      assert.equal(d.headers['x-turnout-dlq-reason'], viaGreen.has(id) ? 'max-attempts' : undefined, `dead-letter reason of ${id}`);
    }

    // Nothing stays behind: every queue (and turnout's delay queues) is empty, as RabbitMQ and turnout report it.
    for (const q of [ingress, blue, green, ingressDlq, blueDlq]) {
      await waitFor(`${q} empty`, async () => (await rabbit.ready(q)) === 0, 5000);
      const res = await fetch(`${router.baseUrl}/v1/queues/${encodeURIComponent(q)}`);
      assert.equal(res.status, 200);
      const depth = (await res.json()) as { queue: string; depth: number };
      assert.equal(depth.depth, 0, `${q} depth via /v1/queues`);
    }
    const routes = (await (await fetch(`${router.baseUrl}/v1/routes`)).json()) as { counts: { blue: number; green: number } };
    assert.deepEqual(routes.counts, { blue: MESSAGES - viaGreen.size, green: viaGreen.size }, 'the router counted what the apps saw');

    // SIGTERM with nothing in flight: a clean drain.
    for (const p of [router, greenConsumer, blueConsumer]) assert.equal(await p.stop('SIGTERM'), 0);
  });

  test('a version nobody here accepts is deferred through the delay queue, then dead-lettered after TURNOUT_MAX_DEFERRALS', async () => {
    const q = await rabbit.queue('quorum', 'defer');
    const dlq = await rabbit.queue('classic', 'defer-dlq');
    const app = await startApp(() => 200);
    apps.push(app);
    const t = await startTurnout({ TURNOUT_BROKER: AMQP_URL, TURNOUT_SOURCE: q, TURNOUT_APP_URL: app.url, TURNOUT_DLQ: dlq, TURNOUT_ACCEPT: '2', TURNOUT_DEFER_DELAY: '800', TURNOUT_MAX_DEFERRALS: '2' });
    procs.push(t);
    const ids: Record<string, string[]> = { '2': [], '3': [] };
    const started = Date.now();
    for (let i = 0; i < 10; i++) {
      const v = i % 2 ? '3' : '2';
      const r = await publishVia(t.baseUrl, JSON.stringify({ i }), { 'x-schema-version': v }, q);
      assert.equal(r.status, 202);
      ids[v]?.push(String(r.json.id));
    }
    await waitFor('five dead-lettered', async () => (await rabbit.ready(dlq)) === 5, 15_000, 50);
    const elapsed = Date.now() - started;
    const tally = new Tally();
    for (const d of app.deliveries) tally.record('app', d.id);
    for (const m of await rabbit.drain(dlq)) {
      tally.record('dlq', String(m.properties.messageId));
      const h = m.properties.headers as Record<string, unknown>;
      assert.equal(String(h['x-turnout-dlq-reason']), 'unsupported-version');
      assert.equal(String(h['x-schema-version']), '3', 'the original version, untranslated');
    }
    for (const id of ids['2'] ?? []) assert.deepEqual(tally.placesOf(id), { app: 1 });
    for (const id of ids['3'] ?? []) assert.deepEqual(tally.placesOf(id), { dlq: 1 }, 'never sent to the app');
    assert.ok(elapsed >= 1600, `two deferrals of 800 ms took only ${elapsed} ms`);
    const metrics = await (await fetch(`${t.baseUrl}/metrics`)).text();
    const deferred = metrics.split('\n').find((l) => l.startsWith('turnout_messages_deferred_total') && l.includes(`source="${q}"`) && l.includes('version="3"'));
    assert.equal(deferred?.split(' ').at(-1), '10', 'each v3 message deferred exactly twice: no hot loop');
    assert.equal(await rabbit.ready(`turnout.delay.${q}`), 0);
    assert.equal(await rabbit.ready(q), 0);
    assert.equal(await t.stop('SIGTERM'), 0);
  });

  test("without TURNOUT_DLQ, rejected messages go to the source's own dead-letter exchange, and the start-up log says so", async () => {
    const target = await rabbit.queue('classic', 'native-dlx');
    const q = await rabbit.queue('quorum', 'native-src', { 'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': target });
    const app = await startApp(() => 400);
    apps.push(app);
    const t = await startTurnout({ TURNOUT_BROKER: AMQP_URL, TURNOUT_SOURCE: q, TURNOUT_APP_URL: app.url });
    procs.push(t);
    assert.ok(t.logs().some((l) => /no TURNOUT_DLQ/.test(String(l.msg)) && /reject without requeue/.test(String(l.msg))), 'start-up log names the native dead-letter path');
    const sent: string[] = [];
    for (let i = 0; i < 5; i++) {
      const r = await publishVia(t.baseUrl, JSON.stringify({ i }), { 'x-schema-version': '1' }, q);
      assert.equal(r.status, 202);
      sent.push(String(r.json.id));
    }
    await waitFor('five in the dead-letter target', async () => (await rabbit.ready(target)) === 5, 10_000, 50);
    const tally = new Tally();
    for (const d of app.deliveries) tally.record('app', d.id);
    for (const m of await rabbit.drain(target)) {
      tally.record('dlx', String(m.properties.messageId));
      const death = (m.properties.headers as Record<string, unknown>)['x-death'] as { reason?: unknown; queue?: unknown }[] | undefined;
      assert.equal(String(death?.[0]?.reason), 'rejected');
      assert.equal(String(death?.[0]?.queue), q);
    }
    for (const id of sent) assert.deepEqual(tally.placesOf(id), { app: 1, dlx: 1 });
    assert.equal(await rabbit.ready(q), 0);
    assert.equal(await t.stop('SIGTERM'), 0);
  });
});
