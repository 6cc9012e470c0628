// Per-key order under concurrency: messages of one partition (so of one key)
// are handled one after another, partitions in parallel. With 4 partitions
// and TURNOUT_CONCURRENCY=8, at most 4 deliveries run at once, at least 2 do,
// and every key's messages reach the app in the order they were produced.
// Also: a delivery much longer than the session timeout does not get the
// consumer thrown out of its group (heartbeats do not wait for deliveries).

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startApp, type Delivery } from '../../support/app.ts';
import { depthOf, startTurnout } from '../../support/process.ts';
import { waitFor } from '../../support/wait.ts';
import { startMockCluster, type MockCluster } from './cluster.ts';
import { kafkaEnv, SESSION_TIMEOUT_MS } from './env.ts';
import { testProducer } from './topics.ts';

let cluster: MockCluster;
before(async () => {
  cluster = await startMockCluster();
});
after(() => cluster.stop());

test('per-key order under concurrency: one at a time per partition, partitions in parallel', async () => {
  const src = await cluster.newTopic(4, 'order');
  let active = 0;
  let peak = 0;
  const app = await startApp(async () => {
    active++;
    peak = Math.max(peak, active);
    await new Promise((r) => setTimeout(r, Math.floor(Math.random() * 12)));
    active--;
    return 200;
  });
  const keys = 24;
  const perKey = 25;
  const producer = await testProducer(cluster);
  const out = [];
  for (let seq = 0; seq < perKey; seq++) {
    for (let k = 0; k < keys; k++) out.push({ key: `key-${k}`, value: JSON.stringify({ k, seq }), headers: { 'x-turnout-id': `key-${k}#${seq}` } });
  }
  await producer.send(src, out);
  await producer.close();

  const t = await startTurnout({ ...kafkaEnv(cluster), TURNOUT_SOURCE: src, TURNOUT_APP_URL: app.url, TURNOUT_DLQ: '{source}.dlq', TURNOUT_CONCURRENCY: '8' });
  try {
    await waitFor('all delivered', () => app.accepted.size === keys * perKey, 60_000);
    await waitFor('lag 0', async () => (await depthOf(t.baseUrl, src)) === 0, 10_000);
    assert.equal(app.deliveries.length, keys * perKey, 'each message delivered exactly once');
    const byKey = new Map<string, number[]>();
    for (const d of app.deliveries as Delivery[]) {
      const { k, seq } = JSON.parse(d.body.toString()) as { k: number; seq: number };
      const list = byKey.get(`key-${k}`) ?? [];
      list.push(seq);
      byKey.set(`key-${k}`, list);
    }
    for (const [key, seqs] of byKey) assert.deepEqual(seqs, Array.from({ length: perKey }, (_, i) => i), `${key} out of order`);
    assert.ok(peak >= 2, `partitions ran in parallel (peak ${peak})`);
    assert.ok(peak <= 4, `never two at once from one partition (peak ${peak} with 4 partitions)`);
    assert.equal(await t.stop(), 0);
  } finally {
    await t.kill();
    await app.close();
  }
});

test('a delivery far longer than the session timeout keeps the group membership; other partitions go on', async () => {
  const src = await cluster.newTopic(2, 'long');
  const slowMs = 2.5 * SESSION_TIMEOUT_MS;
  const app = await startApp((d) => (d.id === 'slow' ? { status: 200, delayMs: slowMs } : 200));
  const producer = await testProducer(cluster);
  // Twenty other keys: some share the slow message's partition (they wait), the rest do not.
  const msgs = [{ key: 'slow-key', value: '{}', headers: { 'x-turnout-id': 'slow' } }];
  for (let i = 0; i < 20; i++) msgs.push({ key: `fast-${i}`, value: '{}', headers: { 'x-turnout-id': `fast-${i}` } });
  await producer.send(src, msgs);
  await producer.close();

  const t = await startTurnout({ ...kafkaEnv(cluster), TURNOUT_SOURCE: src, TURNOUT_APP_URL: app.url, TURNOUT_DLQ: '{source}.dlq', TURNOUT_CONCURRENCY: '4' });
  try {
    await waitFor('the slow delivery started', () => app.deliveries.some((d) => d.id === 'slow'), 20_000);
    const slowStarted = Date.now();
    const slowPartition = app.deliveries.find((d) => d.id === 'slow')?.headers['x-turnout-kafka-partition'];
    await waitFor('all delivered', () => app.accepted.size === msgs.length, slowMs + 20_000);
    assert.ok(Date.now() - slowStarted >= slowMs - 100);
    const other = app.deliveries.filter((d) => d.headers['x-turnout-kafka-partition'] !== slowPartition);
    assert.ok(other.length > 0, 'some messages on the other partition');
    for (const d of other) assert.ok(d.at < slowStarted + slowMs - 1000, `${d.id} on the other partition waited for the slow one`);
    assert.equal(app.deliveries.filter((d) => d.id === 'slow').length, 1, 'the long delivery was not handed out again');
    assert.equal(app.deliveries.length, msgs.length, 'no message delivered twice');
    const assigned = t.logs().filter((l) => l.msg === 'kafka partitions assigned');
    assert.equal(assigned.length, 1, 'joined once: never thrown out of the group');
    assert.ok(!t.logs().some((l) => /crash|rebalancing/i.test(String(l.msg))), 'no crash, no rebalance');
    await waitFor('lag 0', async () => (await depthOf(t.baseUrl, src)) === 0, 10_000);
    assert.equal(await t.stop(), 0);
  } finally {
    await t.kill();
    await app.close();
  }
});
