// The version gate end to end: pass, translate (up and down chains), defer,
// translation errors and hot reload of the translators file, in a real
// turnout process delivering to a real app.

import assert from 'node:assert/strict';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { startApp, type Delivery } from '../support/app.ts';
import { metricValue, scrape } from '../support/metrics.ts';
import { depthOf, publishVia, startTurnout } from '../support/process.ts';
import { sleep, waitFor } from '../support/wait.ts';

const STEPS = {
  '1->2': '$merge([$sift($, function($v,$k){$k != "email"}), {"contact": {"email": email}}])',
  '2->1': '$merge([$sift($, function($v,$k){$k != "contact"}), {"email": contact.email}])',
  '2->3': '$merge([$, {"tier": "basic"}])',
  '3->2': '$sift($, function($v,$k){$k != "tier"})',
};
const yaml = (steps: Record<string, string>): string => Object.entries(steps).map(([k, v]) => `"${k}": '${v}'`).join('\n') + '\n';

async function setup(accept: string, steps: Record<string, string>, extra: Record<string, string> = {}) {
  const dir = await mkdtemp(join(tmpdir(), 'turnout-versions-'));
  const file = join(dir, 'translators.yaml');
  await writeFile(file, yaml(steps));
  const app = await startApp(() => 200);
  const t = await startTurnout({
    TURNOUT_SOURCE: 'in',
    TURNOUT_DLQ: 'dead',
    TURNOUT_APP_URL: app.url,
    TURNOUT_ACCEPT: accept,
    TURNOUT_TRANSLATORS: file,
    TURNOUT_DEFER_DELAY: '100',
    TURNOUT_MAX_DEFERRALS: '2',
    ...extra,
  });
  const send = async (id: string, body: string, version?: string): Promise<void> => {
    const headers: Record<string, string> = { 'x-turnout-message-id': id };
    if (version !== undefined) headers['x-schema-version'] = version;
    const r = await publishVia(t.baseUrl, body, headers, 'in');
    assert.equal(r.status, 202);
  };
  const depth = (q: string): Promise<number> => depthOf(t.baseUrl, q);
  return { dir, file, app, t, send, depth };
}

const one = (list: Delivery[] | undefined): Delivery => {
  assert.equal(list?.length, 1, 'delivered exactly once');
  return (list as Delivery[])[0] as Delivery;
};

test('v1 app: pass v1, translate v2 and v3 down the chain, default version for no header, v prefix', async () => {
  const s = await setup('1', STEPS);
  try {
    await s.send('plain-v1', JSON.stringify({ id: 1, email: 'a@x' }), '1');
    await s.send('no-header', JSON.stringify({ id: 2, email: 'b@x' }));
    await s.send('v2', JSON.stringify({ id: 3, contact: { email: 'c@x' } }), 'v2');
    await s.send('v3', JSON.stringify({ id: 4, contact: { email: 'd@x' }, tier: 'basic' }), '3');
    await waitFor('4 delivered', () => s.app.accepted.size === 4);
    await sleep(200);

    const p = one(s.app.accepted.get('plain-v1'));
    assert.equal(p.headers['x-schema-version'], '1');
    assert.equal(p.headers['x-turnout-translated-from'], undefined);
    assert.deepEqual(JSON.parse(p.body.toString()), { id: 1, email: 'a@x' });

    const n = one(s.app.accepted.get('no-header'));
    assert.equal(n.headers['x-turnout-translated-from'], undefined, 'no header = TURNOUT_DEFAULT_VERSION 1 = pass');

    const v2 = one(s.app.accepted.get('v2'));
    assert.equal(v2.headers['x-schema-version'], '1');
    assert.equal(v2.headers['x-turnout-translated-from'], '2');
    assert.deepEqual(JSON.parse(v2.body.toString()), { id: 3, email: 'c@x' });

    const v3 = one(s.app.accepted.get('v3'));
    assert.equal(v3.headers['x-schema-version'], '1');
    assert.equal(v3.headers['x-turnout-translated-from'], '3');
    assert.deepEqual(JSON.parse(v3.body.toString()), { id: 4, email: 'd@x' }, '3->2->1');

    const m = await scrape(s.t.baseUrl);
    assert.equal(metricValue(m, 'turnout_messages_translated_total', { from: '2', to: '1' }), 1);
    assert.equal(metricValue(m, 'turnout_messages_translated_total', { from: '3', to: '1' }), 1);
    assert.equal(metricValue(m, 'turnout_messages_received_total', { source: 'in', version: '1' }), 2);
    assert.equal(metricValue(m, 'turnout_messages_received_total', { source: 'in', version: '3' }), 1);
    assert.equal(await s.depth('dead'), 0);
  } finally {
    assert.equal(await s.t.stop(), 0);
    await s.app.close();
  }
});

test('v3 app: a v1 message is translated up 1->2->3', async () => {
  const s = await setup('3', STEPS);
  try {
    await s.send('up', JSON.stringify({ id: 9, email: 'u@x' }), '1');
    await waitFor('delivered', () => s.app.accepted.size === 1);
    const d = one(s.app.accepted.get('up'));
    assert.equal(d.headers['x-schema-version'], '3');
    assert.deepEqual(JSON.parse(d.body.toString()), { id: 9, contact: { email: 'u@x' }, tier: 'basic' });
  } finally {
    assert.equal(await s.t.stop(), 0);
    await s.app.close();
  }
});

test('bad input: no chain → deferred then unsupported-version; not JSON and a throwing step → translate-error; a header that is no version → unsupported-version', async () => {
  const s = await setup('1', { ...STEPS, '4->1': '$error("field layout unknown")' });
  try {
    await s.send('v9', JSON.stringify({ id: 1 }), '9');
    await s.send('not-json', '{"id": broken', '2');
    await s.send('throws', JSON.stringify({ id: 2 }), '4');
    await s.send('garbage-version', JSON.stringify({ id: 3 }), 'two');
    await s.send('fine', JSON.stringify({ id: 4, email: 'f@x' }), '1');
    // 4 dead-lettered: v9 after 2 deferrals (>= 200 ms), the others at once
    await waitFor('4 dead-lettered', async () => (await s.depth('dead')) === 4, 10_000);
    await sleep(200);
    assert.deepEqual([...s.app.accepted.keys()], ['fine'], 'the app saw only the good message');
    assert.equal(s.app.deliveries.length, 1);
    const m = await scrape(s.t.baseUrl);
    assert.equal(metricValue(m, 'turnout_messages_deferred_total', { source: 'in', version: '9' }), 2);
    assert.equal(metricValue(m, 'turnout_messages_dead_lettered_total', { source: 'in', reason: 'unsupported-version' }), 2);
    assert.equal(metricValue(m, 'turnout_messages_dead_lettered_total', { source: 'in', reason: 'translate-error' }), 2);
    assert.equal(metricValue(m, 'turnout_messages_received_total', { source: 'in', version: 'invalid' }), 1);
    assert.equal(await s.depth('in'), 0);
    const logs = s.t.logs().filter((l) => l.msg === 'dead-lettered');
    assert.equal(logs.length, 4);
    const byId = Object.fromEntries(logs.map((l) => [String(l.id), l]));
    assert.match(String(byId['not-json']?.error), /not JSON/);
    assert.match(String(byId.throws?.error), /step 4->1 failed: field layout unknown/);
    assert.match(String(byId['garbage-version']?.error), /"two" is not a version/);
    assert.match(String(byId.v9?.error), /deferred 2 times/);
  } finally {
    assert.equal(await s.t.stop(), 0);
    await s.app.close();
  }
});

test('hot reload: a new step takes effect; an invalid file is logged and the previous set stays', async () => {
  const s = await setup('1', { '3->2': STEPS['3->2'] }, { TURNOUT_DEFER_DELAY: '300', TURNOUT_MAX_DEFERRALS: '50' });
  try {
    // No 2->1 step yet: a v2 message is deferred.
    await s.send('waits', JSON.stringify({ id: 1, contact: { email: 'w@x' } }), '2');
    await waitFor('deferred', async () => metricValue(await scrape(s.t.baseUrl), 'turnout_messages_deferred_total') >= 1);
    assert.equal(s.app.accepted.size, 0);

    // Ship the step: the deferred message comes back and is translated.
    await writeFile(s.file, yaml({ '3->2': STEPS['3->2'], '2->1': STEPS['2->1'] }));
    await waitFor('translated after reload', () => s.app.accepted.has('waits'), 10_000);
    const d = one(s.app.accepted.get('waits'));
    assert.equal(d.headers['x-turnout-translated-from'], '2');
    assert.ok(Number(d.headers['x-turnout-deferrals']) >= 1, 'it had been deferred');
    assert.ok(s.t.logs().some((l) => l.msg === 'translators reloaded'));

    // Break the file: the old set stays active.
    await writeFile(s.file, '"2->1": \'$merge([\'\n');
    await waitFor('reload failure logged', () => s.t.logs().some((l) => String(l.msg).includes('previous set stays active')), 5000);
    await s.send('after-broken', JSON.stringify({ id: 2, contact: { email: 'z@x' } }), '2');
    await waitFor('still translated', () => s.app.accepted.has('after-broken'));
    assert.equal(one(s.app.accepted.get('after-broken')).headers['x-schema-version'], '1');
    const m = await scrape(s.t.baseUrl);
    assert.equal(metricValue(m, 'turnout_translators_reload_failures_total'), 1);
    const failure = s.t.logs().find((l) => String(l.msg).includes('previous set stays active'));
    assert.match(String(failure?.err), /step "2->1"/);
    assert.equal(await s.depth('dead'), 0);
  } finally {
    assert.equal(await s.t.stop(), 0);
    await s.app.close();
  }
});

// The consume side of the same limit (a message over it arriving from the broker → dead-lettered as too-large)
// needs a message put on the broker past turnout's own publish check: see test/unit/pipeline tests.
test('oversized publish → 413 and nothing reaches the broker or the app', async () => {
  const app = await startApp(() => 200);
  const t = await startTurnout({ TURNOUT_SOURCE: 'in', TURNOUT_DLQ: 'dead', TURNOUT_APP_URL: app.url, TURNOUT_MAX_MESSAGE_BYTES: '64' });
  try {
    const big = JSON.stringify({ pad: 'x'.repeat(100) });
    const r = await publishVia(t.baseUrl, big, {}, 'in');
    assert.equal(r.status, 413, 'publish refuses it first');
    assert.match(String(r.json.error), /exceeds 64 bytes/);
    const ok = await publishVia(t.baseUrl, '{"small":1}', { 'x-turnout-message-id': 's1' }, 'in');
    assert.equal(ok.status, 202);
    await waitFor('small delivered', () => app.accepted.has('s1'));
    assert.equal(app.deliveries.length, 1);
  } finally {
    assert.equal(await t.stop(), 0);
    await app.close();
  }
});
