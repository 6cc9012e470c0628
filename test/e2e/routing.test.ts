// Routing end to end: sticky weighted split, the weight from the admin API
// and from the weight file, monotonic ramps, and the router role consuming a
// source into blue/green.

import assert from 'node:assert/strict';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { test } from 'node:test';
import { startApp } from '../support/app.ts';
import { metricValue, scrape } from '../support/metrics.ts';
import { depthOf, publishVia, startTurnout } from '../support/process.ts';
import { waitFor } from '../support/wait.ts';

const putWeight = async (baseUrl: string, weight: unknown, token?: string): Promise<Response> =>
  fetch(`${baseUrl}/v1/routes/green-weight`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json', ...(token !== undefined ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify({ weight }),
  });

test('publish routes by sticky key; raising the weight only moves keys blue → green', async () => {
  const t = await startTurnout({ TURNOUT_BLUE: 'blue', TURNOUT_GREEN: 'green', TURNOUT_GREEN_WEIGHT: '20', TURNOUT_ADMIN_TOKEN: 's3cret' });
  try {
    const keys = Array.from({ length: 400 }, (_, i) => `customer-${i}`);
    const sideAt = async (): Promise<Map<string, string>> => {
      const out = new Map<string, string>();
      for (const k of keys) {
        const r = await publishVia(t.baseUrl, '{}', { 'x-turnout-key': k });
        assert.equal(r.status, 202);
        out.set(k, String(r.json.queue));
      }
      return out;
    };
    const at20 = await sideAt();
    const again20 = await sideAt();
    assert.deepEqual([...again20], [...at20], 'same key, same weight → same side');
    const green20 = [...at20.values()].filter((q) => q === 'green').length;
    assert.ok(green20 > 40 && green20 < 120, `about 20 % green, got ${green20}/400`);

    assert.equal((await putWeight(t.baseUrl, 60, 's3cret')).status, 200);
    const at60 = await sideAt();
    for (const [k, side] of at20) if (side === 'green') assert.equal(at60.get(k), 'green', `${k} moved back to blue`);
    const green60 = [...at60.values()].filter((q) => q === 'green').length;
    assert.ok(green60 > 200 && green60 < 280, `about 60 % green, got ${green60}/400`);

    // every publish accounted for: 3 rounds of 400 on the two queues
    const depth = (q: string): Promise<number> => depthOf(t.baseUrl, q);
    assert.equal((await depth('blue')) + (await depth('green')), 1200);
    assert.equal(await depth('green'), 2 * green20 + green60);
    const routes = (await (await fetch(`${t.baseUrl}/v1/routes`)).json()) as Record<string, unknown>;
    assert.deepEqual(routes.counts, { blue: 1200 - 2 * green20 - green60, green: 2 * green20 + green60 });
    assert.equal(routes.greenWeight, 60);
    assert.equal(routes.weightSource, 'admin');
    assert.equal(routes.blue, 'blue');
    const m = await scrape(t.baseUrl);
    assert.equal(metricValue(m, 'turnout_green_weight'), 60);
    assert.equal(metricValue(m, 'turnout_messages_routed_total', { color: 'green' }), 2 * green20 + green60);
  } finally {
    assert.equal(await t.stop(), 0);
  }
});

test('admin API: 403 without a configured token, 401 without or with a wrong token, 400 for bad weights', async () => {
  const open = await startTurnout({ TURNOUT_BLUE: 'b', TURNOUT_GREEN: 'g' });
  const guarded = await startTurnout({ TURNOUT_BLUE: 'b', TURNOUT_GREEN: 'g', TURNOUT_ADMIN_TOKEN: 'tok' });
  try {
    assert.equal((await putWeight(open.baseUrl, 10, 'anything')).status, 403);
    assert.equal((await putWeight(guarded.baseUrl, 10)).status, 401);
    assert.equal((await putWeight(guarded.baseUrl, 10, 'wrong')).status, 401);
    assert.equal((await putWeight(guarded.baseUrl, 101, 'tok')).status, 400);
    assert.equal((await putWeight(guarded.baseUrl, '50', 'tok')).status, 400);
    assert.equal((await putWeight(guarded.baseUrl, -1, 'tok')).status, 400);
    const r = await putWeight(guarded.baseUrl, 12.5, 'tok');
    assert.equal(r.status, 200);
    assert.deepEqual(await r.json(), { greenWeight: 12.5, previous: 0 });
    const routes = (await (await fetch(`${open.baseUrl}/v1/routes`)).json()) as { greenWeight: number };
    assert.equal(routes.greenWeight, 0, 'the refused writes changed nothing');
  } finally {
    assert.equal(await open.stop(), 0);
    assert.equal(await guarded.stop(), 0);
  }
});

test('TURNOUT_WEIGHT_FILE is read at start and re-read on change; an invalid value keeps the weight', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'turnout-weight-'));
  const file = join(dir, 'green-weight');
  await writeFile(file, '25\n');
  const t = await startTurnout({ TURNOUT_BLUE: 'b', TURNOUT_GREEN: 'g', TURNOUT_WEIGHT_FILE: file, TURNOUT_GREEN_WEIGHT: '5' });
  const weight = async (): Promise<number> => ((await (await fetch(`${t.baseUrl}/v1/routes`)).json()) as { greenWeight: number }).greenWeight;
  try {
    assert.equal(await weight(), 25, 'the file wins over TURNOUT_GREEN_WEIGHT');
    const routes = (await (await fetch(`${t.baseUrl}/v1/routes`)).json()) as { weightSource: string };
    assert.equal(routes.weightSource, 'file', 'the start weight came from the file, and /v1/routes says so');
    await writeFile(file, '75');
    await waitFor('weight 75', async () => (await weight()) === 75, 5000);
    await writeFile(file, 'lots');
    await waitFor('invalid value logged', () => t.logs().some((l) => String(l.msg).includes('weight file is invalid')), 5000);
    assert.equal(await weight(), 75);
  } finally {
    assert.equal(await t.stop(), 0);
  }
});

test('router role: a source is split into blue and green; a consumer on blue sees only blue messages, with TURNOUT_PRODUCE_VERSION stamped', async () => {
  // One process: consumes "blue" and delivers to the app; /v1/publish routes to blue/green.
  const app = await startApp(() => 200);
  const t = await startTurnout({
    TURNOUT_SOURCE: 'blue',
    TURNOUT_APP_URL: app.url,
    TURNOUT_DLQ: 'dead',
    TURNOUT_BLUE: 'blue',
    TURNOUT_GREEN: 'green',
    TURNOUT_GREEN_WEIGHT: '50',
    TURNOUT_ROUTE_KEY: 'json:customer.id',
    TURNOUT_PRODUCE_VERSION: '2',
  });
  try {
    const sent = new Map<string, string>();
    for (let i = 0; i < 200; i++) {
      const id = `m${i}`;
      const r = await publishVia(t.baseUrl, JSON.stringify({ customer: { id: `c${i % 20}` }, i }), { 'x-turnout-message-id': id });
      assert.equal(r.status, 202);
      sent.set(id, String(r.json.queue));
    }
    const blueIds = [...sent].filter(([, q]) => q === 'blue').map(([id]) => id);
    await waitFor('blue delivered', () => app.accepted.size === blueIds.length, 10_000);
    for (const id of blueIds) {
      assert.equal(app.accepted.get(id)?.length, 1);
      assert.equal(app.accepted.get(id)?.[0]?.headers['x-schema-version'], '2');
    }
    // json:customer.id is sticky: all messages of one customer went to one side
    const sideOf = new Map<string, string>();
    for (const [id, q] of sent) {
      const customer = `c${Number(id.slice(1)) % 20}`;
      assert.equal(sideOf.get(customer) ?? q, q, `${customer} split across sides`);
      sideOf.set(customer, q);
    }
    const green = (await depthOf(t.baseUrl, 'green'));
    assert.equal(green + blueIds.length, 200, 'every message is on green or was delivered from blue');
  } finally {
    assert.equal(await t.stop(), 0);
    await app.close();
  }
});

test('router role consuming an ingress queue: each message to exactly one side, counts add up', async () => {
  const t = await startTurnout({ TURNOUT_SOURCE: 'ingress', TURNOUT_BLUE: '{source}.blue', TURNOUT_GREEN: '{source}.green', TURNOUT_GREEN_WEIGHT: '30', TURNOUT_DLQ: 'dead' });
  try {
    for (let i = 0; i < 300; i++) assert.equal((await publishVia(t.baseUrl, `{"i":${i}}`, { 'x-turnout-key': `k${i}` }, 'ingress')).status, 202);
    const depth = (q: string): Promise<number> => depthOf(t.baseUrl, q);
    await waitFor('all routed', async () => (await depth('ingress.blue')) + (await depth('ingress.green')) === 300, 10_000);
    const g = await depth('ingress.green');
    assert.ok(g > 60 && g < 120, `about 30 % green, got ${g}/300`);
    assert.equal(await depth('ingress'), 0);
    assert.equal(await depth('dead'), 0);
    const m = await scrape(t.baseUrl);
    assert.equal(metricValue(m, 'turnout_messages_routed_total', { color: 'green' }), g);
    assert.equal(metricValue(m, 'turnout_messages_routed_total', { color: 'blue' }), 300 - g);
    // a publish without a queue cannot resolve {source}
    const r = await publishVia(t.baseUrl, '{}');
    assert.equal(r.status, 400);
    assert.match(String(r.json.error), /\{source\}/);
  } finally {
    assert.equal(await t.stop(), 0);
  }
});

test('a weight file changed while start-up still waits (for the app) is applied once turnout runs', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'turnout-weight-'));
  const file = join(dir, 'green-weight');
  await writeFile(file, '25\n');
  const port = await new Promise<number>((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
  const t = await startTurnout(
    { TURNOUT_SOURCE: 'in', TURNOUT_DLQ: 'dead', TURNOUT_APP_URL: `http://127.0.0.1:${port}/m`, TURNOUT_BLUE: 'b', TURNOUT_GREEN: 'g', TURNOUT_WEIGHT_FILE: file },
    { waitReady: false },
  );
  const app = await (async () => {
    try {
      await waitFor('waiting for the app', async () => ((await (await fetch(`${t.baseUrl}/readyz`)).json()) as { reason?: string }).reason === 'waiting for the app');
      await writeFile(file, '75\n');
      return await startApp(() => 200, port);
    } catch (err) {
      await t.kill();
      throw err;
    }
  })();
  try {
    await waitFor('ready', async () => (await fetch(`${t.baseUrl}/readyz`)).status === 200);
    await waitFor('weight 75', async () => ((await (await fetch(`${t.baseUrl}/v1/routes`)).json()) as { greenWeight: number }).greenWeight === 75, 5000);
  } finally {
    assert.equal(await t.stop(), 0);
    await app.close();
  }
});
