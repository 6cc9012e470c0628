// The translation budget end to end (issue 11, item 1; issue 14), in the
// real turnout process: while hostile messages keep coming — the
// endless-recursion step (compiled: stopped at its main-thread slice, then
// moved to the workers), objects of just under 64 KiB for a compiled step
// (the largest the fast path takes in turnout's thread), 256 KiB objects for
// the same step (the workers take those) and 256 KiB of garbage — /healthz and /metrics keep answering (p99 of 200 health probes
// under 100 ms), every overrunning message is dead-lettered translate-error
// "timed out after 1000 ms" (the default TURNOUT_TRANSLATE_TIMEOUT), and
// every message is accounted for.
//
// The overlap of probes and translations is certain by construction, not by
// timing: the producer sends one message of each kind every ROUND_MS for as
// long as the probes run, i.e. endless messages at twice the rate the two
// workers can finish them (each holds one for the full second), so a backlog
// is bound to be there when the probes end; a scrape then shows it.

import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { FAST_MAX_PAYLOAD_BYTES } from '../../src/translate/fast.ts';
import { startApp } from '../support/app.ts';
import { metricValue, scrape } from '../support/metrics.ts';
import { depthOf, publishVia, runTurnout, startTurnout } from '../support/process.ts';
import { sleep, waitFor } from '../support/wait.ts';

const ENDLESS = '($f := function($n){ $f($n+1) }; $f(0))';
const DESIGN_1_2 = '$merge([$sift($, function($v,$k){$k != "email"}), {"contact": {"email": email}}])';
const MAX = 262_144;
/** One message of each kind per round: 4 endless messages a second, two workers finish 2. */
const ROUND_MS = 250;
const PROBES = 200;
/**
 * Above the endless messages a probe phase sends (~4 s × 4/s), so that the
 * wide and garbage messages never queue behind them in the broker: turnout
 * takes each one as it arrives and does its main-thread work (parsing,
 * compiled translation) while the probes run.
 */
const CONCURRENCY = '64';

/** A JSON object of many keys just under `size` bytes (the realistic payload of the issue, trimmed to fit). */
function wideObject(size: number): string {
  const o: Record<string, string> = { email: 'wide@example.com' };
  for (let i = 0; JSON.stringify(o).length < size - 40; i++) o[`field_${i}`] = `value-${i}`;
  return JSON.stringify(o);
}
/** 256 KiB that is not JSON: ten thousand open brackets, then garbage. */
const notJson = (): string => '['.repeat(10_000) + 'x'.repeat(MAX - 10_000 - 1);

const percentile = (sorted: number[], p: number): number => sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? NaN;

type Kind = 'endless' | 'medium' | 'wide' | 'garbage';

test('endless recursion and 256 KiB hostile payloads arriving throughout: /healthz answers within 100 ms at p99, overruns are dead-lettered, nothing is lost', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'turnout-budget-'));
  const file = join(dir, 'translators.yaml');
  await writeFile(file, `"1->2": '${ENDLESS}'\n"3->2": '${DESIGN_1_2}'\n`);
  const app = await startApp(() => 200);
  const turnout = await startTurnout({
    TURNOUT_SOURCE: 'in',
    TURNOUT_DLQ: 'dead',
    TURNOUT_APP_URL: app.url,
    TURNOUT_ACCEPT: '2',
    TURNOUT_TRANSLATORS: file,
    TURNOUT_CONCURRENCY: CONCURRENCY,
  });
  try {
    const bodies: Record<Kind, string> = { endless: '{"n":1}', medium: wideObject(FAST_MAX_PAYLOAD_BYTES), wide: wideObject(MAX), garbage: notJson() };
    assert.ok(bodies.wide.length <= MAX && bodies.wide.length > MAX - 100 && bodies.garbage.length === MAX - 1);
    assert.ok(bodies.medium.length <= FAST_MAX_PAYLOAD_BYTES && bodies.medium.length > FAST_MAX_PAYLOAD_BYTES - 100);
    const sent: Record<Kind, string[]> = { endless: [], medium: [], wide: [], garbage: [] };
    const send = async (kind: Kind, i: number): Promise<void> => {
      const id = `${kind}-${i}`;
      const body = bodies[kind];
      const r = await publishVia(turnout.baseUrl, body, { 'x-turnout-message-id': id, 'x-schema-version': kind === 'endless' ? '1' : '3' }, 'in');
      assert.equal(r.status, 202, JSON.stringify(r.json));
      sent[kind].push(id);
    };

    // The producer: a round every ROUND_MS until told to stop.
    let producing = true;
    const producer = (async () => {
      const t0 = performance.now();
      for (let round = 0; producing; round++) {
        await Promise.all([send('endless', round), send('medium', round), send('wide', round), send('garbage', round)]);
        await sleep(Math.max(0, t0 + (round + 1) * ROUND_MS - performance.now()));
      }
    })();
    // If a publish fails, the probes stop at once and the test reports that failure.
    let producerFailed: unknown;
    producer.catch((err: unknown) => (producerFailed = err ?? new Error('the producer failed')));

    await waitFor('the first messages in flight', async () => metricValue(await scrape(turnout.baseUrl), 'turnout_inflight_messages') > 0, 10_000);
    const probesStarted = performance.now();
    const health: number[] = [];
    let metricsAnswered = 0;
    for (let i = 0; i < PROBES && producerFailed === undefined; i++) {
      const t0 = performance.now();
      const res = await fetch(`${turnout.baseUrl}/healthz`);
      await res.arrayBuffer();
      health.push(performance.now() - t0);
      assert.equal(res.status, 200);
      if (i % 20 === 0) {
        const m = await fetch(`${turnout.baseUrl}/metrics`);
        assert.equal(m.status, 200);
        assert.match(await m.text(), /turnout_inflight_messages/);
        metricsAnswered++;
      }
      await sleep(10);
    }
    const probeSeconds = (performance.now() - probesStarted) / 1000;
    producing = false;
    await producer;
    // Every probe was answered, while translations were under way: the last
    // round was accepted a moment ago and its endless message holds a worker
    // for a full second once it gets one, so it (with the backlog ahead of
    // it) is still in flight or waiting in the source.
    assert.equal(health.length, PROBES);
    assert.equal(metricsAnswered, PROBES / 20);
    const afterProbes = await scrape(turnout.baseUrl);
    const inflight = metricValue(afterProbes, 'turnout_inflight_messages');
    const waiting = await depthOf(turnout.baseUrl, 'in');
    const all = Object.values(sent).flat();
    const total = all.length;
    assert.ok(inflight + waiting > 0, `nothing was in flight or waiting when the probes ended (${total} sent): the probes measured nothing`);

    // turnout's own view of its event loop (prom-client's default metrics, since start).
    const lag = ['max', 'p99', 'p50'].map((q) => `${q} ${(metricValue(afterProbes, `nodejs_eventloop_lag_${q}_seconds`) * 1000).toFixed(1)} ms`).join(', ');
    const sorted = [...health].sort((a, b) => a - b);
    const p50 = percentile(sorted, 50);
    const p99 = percentile(sorted, 99);
    const max = sorted[sorted.length - 1] ?? NaN;
    t.diagnostic(`/healthz over ${health.length} probes in ${probeSeconds.toFixed(1)} s while ${sent.endless.length} rounds of hostile messages arrived: p50 ${p50.toFixed(1)} ms, p99 ${p99.toFixed(1)} ms, max ${max.toFixed(1)} ms; /metrics answered ${metricsAnswered}/${PROBES / 20}; ${inflight} in flight and ${waiting} waiting when the probes ended; turnout's event-loop delay ${lag}`);
    assert.ok(p99 < 100, `/healthz p99 ${p99.toFixed(1)} ms (p50 ${p50.toFixed(1)}, max ${max.toFixed(1)})`);

    // Accounting: every message delivered once or dead-lettered once, for the reason its kind calls for.
    await waitFor('every message finished', async () => app.accepted.size + (await depthOf(turnout.baseUrl, 'dead')) === total, 240_000);
    await sleep(200);
    assert.equal(await depthOf(turnout.baseUrl, 'in'), 0);
    assert.equal(new Set(all).size, total);
    const deadLines = turnout.logs().filter((l) => l.msg === 'dead-lettered');
    const dead = new Map(deadLines.map((l) => [String(l.id), l]));
    assert.equal(dead.size, deadLines.length, 'no message dead-lettered twice');
    assert.equal(dead.size, await depthOf(turnout.baseUrl, 'dead'));
    for (const id of [...app.accepted.keys()]) assert.ok(sent.wide.includes(id) || sent.medium.includes(id), `${id} delivered`);
    for (const id of sent.endless) {
      assert.equal(app.accepted.has(id), false, id);
      assert.equal(dead.get(id)?.reason, 'translate-error', id);
      assert.match(String(dead.get(id)?.error), /^timed out after 1000 ms/, id);
    }
    for (const id of sent.garbage) {
      assert.equal(app.accepted.has(id), false, id);
      assert.equal(dead.get(id)?.reason, 'translate-error', id);
      assert.match(String(dead.get(id)?.error), /payload is not JSON/, id);
    }
    let wideDelivered = 0;
    const delivered: Record<'medium' | 'wide', number> = { medium: 0, wide: 0 };
    for (const id of [...sent.medium, ...sent.wide]) {
      // A wide object translates in milliseconds compiled, or in a few hundred ms on the reference
      // evaluator (the 256 KiB ones, and the others once the step is moved to the workers); on a
      // loaded machine it may overrun the budget, and then it must be a timeout, delivered never.
      const d = app.accepted.get(id);
      if (d) {
        assert.equal(d.length, 1, `${id} delivered once`);
        assert.equal(dead.has(id), false, id);
        const body = JSON.parse(d[0]?.body.toString() ?? '') as Record<string, unknown>;
        assert.deepEqual(body.contact, { email: 'wide@example.com' });
        assert.equal(body.email, undefined);
        assert.equal(d[0]?.headers['x-turnout-translated-from'], '3');
        wideDelivered++;
        delivered[id.startsWith('medium') ? 'medium' : 'wide']++;
      } else {
        assert.equal(dead.get(id)?.reason, 'translate-error', id);
        assert.match(String(dead.get(id)?.error), /^timed out after 1000 ms/, id);
      }
    }
    const demoted = turnout.logs().filter((l) => l.msg === 'a compiled translation step kept overrunning its main-thread slice; it runs in the worker pool from now on').map((l) => l.step);
    t.diagnostic(`${total} messages: ${sent.endless.length} endless (dead-lettered), ${sent.garbage.length} garbage (dead-lettered), ${sent.medium.length} 64 KiB objects (${delivered.medium} delivered) and ${sent.wide.length} 256 KiB objects (${delivered.wide} delivered), the rest over the budget; compiled steps moved to the workers: ${demoted.join(', ') || 'none'}`);
    assert.ok(turnout.logs().some((l) => l.msg === 'a translation overran its budget; its worker process was killed and is replaced'));
    const m = await scrape(turnout.baseUrl);
    assert.equal(metricValue(m, 'turnout_messages_dead_lettered_total', { reason: 'translate-error' }), total - wideDelivered);
    assert.equal(metricValue(m, 'turnout_messages_dead_lettered_total'), total - wideDelivered);
    assert.equal(metricValue(m, 'turnout_messages_translated_total', { from: '3', to: '2' }), wideDelivered);
  } finally {
    assert.equal(await turnout.stop(), 0);
    await app.close();
    await rm(dir, { recursive: true, force: true });
  }
});

test('a translated copy over TURNOUT_MAX_MESSAGE_BYTES is dead-lettered too-large; a lower TURNOUT_TRANSLATE_TIMEOUT applies', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'turnout-budget-'));
  const file = join(dir, 'translators.yaml');
  await writeFile(file, `"1->2": '[1..2000]'\n"3->2": '${ENDLESS}'\n`);
  const app = await startApp(() => 200);
  const turnout = await startTurnout({
    TURNOUT_SOURCE: 'in',
    TURNOUT_DLQ: 'dead',
    TURNOUT_APP_URL: app.url,
    TURNOUT_ACCEPT: '2',
    TURNOUT_TRANSLATORS: file,
    TURNOUT_MAX_MESSAGE_BYTES: '4096',
    TURNOUT_TRANSLATE_TIMEOUT: '250',
  });
  try {
    for (const [id, v] of [['grows', '1'], ['loops', '3'], ['fits', '2']] as const) {
      assert.equal((await publishVia(turnout.baseUrl, '{"small":1}', { 'x-turnout-message-id': id, 'x-schema-version': v }, 'in')).status, 202);
    }
    await waitFor('2 dead-lettered, 1 delivered', async () => (await depthOf(turnout.baseUrl, 'dead')) === 2 && app.accepted.size === 1, 20_000);
    const dead = new Map(turnout.logs().filter((l) => l.msg === 'dead-lettered').map((l) => [String(l.id), l]));
    assert.equal(dead.get('grows')?.reason, 'too-large');
    assert.match(String(dead.get('grows')?.error), /translated copy \(v1->v2\) is 8894 bytes; TURNOUT_MAX_MESSAGE_BYTES is 4096/);
    assert.equal(dead.get('loops')?.reason, 'translate-error');
    assert.match(String(dead.get('loops')?.error), /^timed out after 250 ms/);
    assert.deepEqual([...app.accepted.keys()], ['fits']);
  } finally {
    assert.equal(await turnout.stop(), 0);
    await app.close();
    await rm(dir, { recursive: true, force: true });
  }
});

test('turnout check --sample runs within the budget: an endless step is reported, not waited for', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'turnout-budget-'));
  try {
    const file = join(dir, 'translators.yaml');
    await writeFile(file, `"1->2": '${ENDLESS}'\n"2->3": '$merge([$, {"v": 3}])'\n`);
    const sample = join(dir, 'sample.json');
    await writeFile(sample, '{"id":1}');
    // It ends (runTurnout fails the test if it has not after two minutes, however loaded the machine) …
    const r = await runTurnout(['check', '--sample', sample, '--versions', '1,2'], { TURNOUT_TRANSLATORS: file, TURNOUT_ACCEPT: '3', TURNOUT_TRANSLATE_TIMEOUT: '300' }, 120_000);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /v1\s+translate via 1->2->3/);
    // … because the endless step was stopped at the budget.
    assert.match(r.stdout, /sample → ERROR: timed out after 300 ms \(TURNOUT_TRANSLATE_TIMEOUT\) translating 1->2->3/);
    assert.match(r.stdout, /v2\s+translate via 2->3[\s\S]*sample → \{"id":1,"v":3\}/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
