// Deferral and dead-lettering on Kafka, end to end with a real turnout
// process: a version the app does not accept waits on turnout's deferral
// topic (not in its source partition), comes back after TURNOUT_DEFER_DELAY,
// and after TURNOUT_MAX_DEFERRALS lands on TURNOUT_DLQ naming the original
// record. TURNOUT_DLQ is required.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startApp, type TestApp } from '../../support/app.ts';
import { metricValue, scrape } from '../../support/metrics.ts';
import { depthOf, runTurnout, startTurnout } from '../../support/process.ts';
import { waitFor } from '../../support/wait.ts';
import { startMockCluster, type MockCluster } from './cluster.ts';
import { kafkaEnv } from './env.ts';
import { readTopics, testProducer } from './topics.ts';

let cluster: MockCluster;
before(async () => {
  cluster = await startMockCluster();
});
after(() => cluster.stop());

test('an unaccepted version waits on the deferral topic without holding up its partition, then goes to the DLQ with its original position', async () => {
  // One partition: the deferred message and the ones after it share it.
  const src = await cluster.newTopic(1, 'orders');
  const dlq = `${src}.dlq`;
  await cluster.createTopic(dlq, 1);
  const app: TestApp = await startApp(() => 200);
  const deferDelay = 1500;
  const t = await startTurnout({
    ...kafkaEnv(cluster),
    TURNOUT_SOURCE: src,
    TURNOUT_APP_URL: app.url,
    TURNOUT_DLQ: '{source}.dlq',
    TURNOUT_ACCEPT: '2',
    TURNOUT_DEFER_DELAY: String(deferDelay),
    TURNOUT_MAX_DEFERRALS: '2',
  });
  const producer = await testProducer(cluster);
  try {
    // A plain producer (no turnout id header): the first record is v3, then ten v2 ones.
    await producer.send(src, [{ key: 'c-1', value: '{"n":0}', headers: { 'x-schema-version': '3', 'x-trace': 'keep-me' } }]);
    await producer.send(src, Array.from({ length: 10 }, (_, i) => ({ key: `c-${i % 3}`, value: `{"n":${i + 1}}`, headers: { 'x-schema-version': '2' } })));
    const v3Id = `${src}/0/0`;
    const start = Date.now();

    await waitFor('the ten v2 messages', () => app.accepted.size === 10, 20_000);
    const v2Done = Date.now();
    const seen = await readTopics(cluster, [dlq, `${src}.turnout-defer`], (s) => s.some((m) => m.topic === dlq), { timeoutMs: 30_000 });
    const dlqDone = Date.now();

    // the v2 messages behind it were not held up by the deferral delay
    assert.ok(dlqDone - v2Done >= deferDelay, `v2 done ${dlqDone - v2Done} ms before the DLQ copy; deferral must not block the partition`);
    assert.ok(dlqDone - start >= 2 * deferDelay, 'two deferrals of 1.5 s each came first');
    assert.equal(app.deliveries.filter((d) => d.id === v3Id).length, 0, 'the app never saw the v3 message');
    assert.deepEqual([...app.accepted.values()].map((l) => l.length), Array(10).fill(1), 'each v2 message delivered once');

    const deferred = seen.filter((m) => m.topic === `${src}.turnout-defer`);
    assert.equal(deferred.length, 2, 'one copy per deferral on the deferral topic');
    assert.deepEqual(deferred.map((m) => m.headers['x-turnout-deferrals']).sort(), ['1', '2']);
    for (const d of deferred) {
      assert.equal(d.key, 'c-1', 'the deferred copy keeps the record key');
      assert.equal(d.headers['x-turnout-id'], v3Id);
      assert.ok(Number(d.headers['x-turnout-not-before']) > 0, 'carries its not-before time');
    }

    const dead = seen.filter((m) => m.topic === dlq);
    assert.equal(dead.length, 1, 'dead-lettered once');
    const d = dead[0]!;
    assert.equal(d.value, '{"n":0}', 'original payload');
    assert.equal(d.key, 'c-1');
    assert.equal(d.headers['x-turnout-dlq-reason'], 'unsupported-version');
    assert.equal(d.headers['x-turnout-source'], src, 'original topic');
    assert.equal(d.headers['x-turnout-kafka-partition'], '0', 'original partition');
    assert.equal(d.headers['x-turnout-kafka-offset'], '0', 'original offset');
    assert.equal(d.headers['x-turnout-id'], v3Id);
    assert.equal(d.headers['x-schema-version'], '3', 'original version');
    assert.equal(d.headers['x-trace'], 'keep-me');
    assert.ok(!Number.isNaN(Date.parse(d.headers['x-turnout-failed-at'] ?? '')));

    const m = await scrape(t.baseUrl);
    assert.equal(metricValue(m, 'turnout_messages_deferred_total', { source: src, version: '3' }), 2);
    assert.equal(metricValue(m, 'turnout_messages_dead_lettered_total', { source: src, reason: 'unsupported-version' }), 1);
    assert.equal(metricValue(m, 'turnout_messages_delivered_total', { source: src }), 10);
    // everything committed: nothing waits on the source or its deferral topic
    await waitFor('lag 0', async () => (await depthOf(t.baseUrl, src)) === 0, 10_000);
    assert.equal(await t.stop(), 0);
  } finally {
    await producer.close();
    await t.kill();
    await app.close();
  }
});

test('dead-letter topic unavailable: the message is released, comes again (redelivered), its partition waits, nothing is skipped', async () => {
  const src = await cluster.newTopic(1, 'poison');
  const dlq = `${src}.dlq`;
  await cluster.markMissing(dlq); // as if the DLQ topic had not been created yet
  // The app refuses "bad" (400 → dead-letter at once) and takes the rest.
  const app: TestApp = await startApp((d) => (d.id === 'bad' ? 400 : 200));
  const t = await startTurnout({ ...kafkaEnv(cluster), TURNOUT_SOURCE: src, TURNOUT_APP_URL: app.url, TURNOUT_DLQ: '{source}.dlq', TURNOUT_RETRY_BACKOFF: '50' });
  const producer = await testProducer(cluster);
  try {
    await producer.send(src, [
      { key: 'a', value: '{"n":1}', headers: { 'x-turnout-id': 'good-1' } },
      { key: 'a', value: '{"n":2}', headers: { 'x-turnout-id': 'bad' } },
      { key: 'a', value: '{"n":3}', headers: { 'x-turnout-id': 'good-2' } },
    ]);
    await waitFor('"bad" handed out again', () => app.deliveries.filter((d) => d.id === 'bad').length >= 2, 30_000);
    const again = app.deliveries.filter((d) => d.id === 'bad')[1]!;
    assert.equal(again.headers['x-turnout-redelivered'], 'true', 'the second copy is marked redelivered');
    assert.equal(app.accepted.has('good-1'), true);
    assert.equal(app.deliveries.some((d) => d.id === 'good-2'), false, 'the message behind it in the partition waits (order kept)');
    assert.ok((await depthOf(t.baseUrl, src)) >= 2, 'not committed past "bad"');

    await cluster.restore(dlq);
    await waitFor('"good-2" delivered after "bad" was dead-lettered', () => app.accepted.has('good-2'), 30_000);
    const seen = await readTopics(cluster, [dlq], (s) => s.length >= 1);
    assert.deepEqual(seen.map((m) => m.headers['x-turnout-id']), ['bad'], 'dead-lettered once');
    assert.equal(seen[0]?.headers['x-turnout-dlq-reason'], 'rejected');
    assert.equal(app.accepted.get('good-1')?.length, 1);
    assert.equal(app.accepted.get('good-2')?.length, 1);
    await waitFor('lag 0', async () => (await depthOf(t.baseUrl, src)) === 0, 10_000);
    assert.equal(await t.stop(), 0);
  } finally {
    await producer.close();
    await t.kill();
    await app.close();
  }
});

test('a deferred copy the broker refuses for its size: dead-lettered once (the dead-letter copy without the headers it is refused with too), its partition goes on', async () => {
  // The copy carries turnout's deferral headers, so a record at the broker's
  // message.max.bytes is taken and its deferred copy is not. Before, the
  // record was handed out again and deferred again for ever: its partition
  // never moved past it.
  const src = await cluster.newTopic(1, 'refused');
  const dlq = `${src}.dlq`;
  await cluster.createTopic(dlq, 1);
  const app: TestApp = await startApp(() => 200);
  const producer = await testProducer(cluster);
  let t: Awaited<ReturnType<typeof startTurnout>> | undefined;
  try {
    await producer.send(src, [
      { key: 'k', value: '{"n":0}', headers: { 'x-schema-version': '3', 'x-trace': 'own-header' } },
      { key: 'k', value: '{"n":1}', headers: { 'x-schema-version': '2', 'x-turnout-id': 'behind' } },
    ]);
    // The next two Produce requests are refused as a broker refuses a record past message.max.bytes
    // (error 10, MESSAGE_TOO_LARGE): the deferred copy, then the dead-letter copy with its headers.
    await cluster.failProduce(10, 2);
    t = await startTurnout({
      ...kafkaEnv(cluster),
      TURNOUT_SOURCE: src,
      TURNOUT_APP_URL: app.url,
      TURNOUT_DLQ: '{source}.dlq',
      TURNOUT_ACCEPT: '2',
      TURNOUT_DEFER_DELAY: '1000',
      TURNOUT_MAX_DEFERRALS: '5',
    });
    const v3Id = `${src}/0/0`;
    const seen = await readTopics(cluster, [dlq, `${src}.turnout-defer`], (s) => s.some((m) => m.topic === dlq), { timeoutMs: 30_000 });
    await waitFor('the message behind it delivered', () => app.accepted.has('behind'), 20_000);

    assert.deepEqual(seen.filter((m) => m.topic === `${src}.turnout-defer`), [], 'no deferred copy was ever taken');
    const dead = seen.filter((m) => m.topic === dlq);
    assert.equal(dead.length, 1, 'dead-lettered once');
    const d = dead[0]!;
    assert.equal(d.headers['x-turnout-id'], v3Id);
    assert.equal(d.value, '{"n":0}', 'original payload');
    assert.equal(d.headers['x-turnout-dlq-reason'], 'unsupported-version');
    assert.equal(d.headers['x-schema-version'], '3', 'the version header stays');
    assert.equal(d.headers['x-trace'], undefined, 'the message\'s own headers went: the full copy was refused too');
    assert.match(d.headers['x-turnout-error'] ?? '', /refused its deferred copy \(publish to .*MESSAGE_TOO_LARGE/);
    assert.match(d.headers['x-turnout-error'] ?? '', /other headers were dropped: the dead-letter target refused them/);
    assert.equal(app.deliveries.filter((x) => x.id === v3Id).length, 0, 'the app never saw the v3 message');
    assert.equal(app.accepted.get('behind')?.length, 1, 'the record behind it delivered once');

    const m = await scrape(t.baseUrl);
    assert.equal(metricValue(m, 'turnout_messages_dead_lettered_total', { source: src, reason: 'unsupported-version' }), 1);
    assert.equal(metricValue(m, 'turnout_messages_deferred_total', { source: src, version: '3' }), 1, 'counted when turnout chose to defer it, before the broker refused the copy');
    await waitFor('lag 0', async () => (await depthOf(t!.baseUrl, src)) === 0, 10_000);
    assert.equal(await t.stop(), 0);
  } finally {
    await producer.close();
    await t?.kill();
    await app.close();
  }
});

test('TURNOUT_DLQ is required with Kafka: exit 2 naming it', async () => {
  const r = await runTurnout(['run'], { ...kafkaEnv(cluster), TURNOUT_SOURCE: 'orders', TURNOUT_APP_URL: 'http://127.0.0.1:9/' });
  assert.equal(r.code, 2);
  assert.match(r.stdout + r.stderr, /TURNOUT_DLQ/);
});

test('a source topic that does not exist stops turnout at start with exit 2', async () => {
  const missing = `absent-${Date.now()}`;
  await cluster.markMissing(missing);
  const app = await startApp(() => 200);
  try {
    const r = await runTurnout(['run'], { ...kafkaEnv(cluster), TURNOUT_SOURCE: missing, TURNOUT_APP_URL: app.url, TURNOUT_DLQ: 'x.dlq', TURNOUT_PORT: '0' });
    assert.equal(r.code, 2, r.stdout + r.stderr);
    assert.match(r.stdout + r.stderr, new RegExp(`${missing}.*does not exist`));
  } finally {
    await app.close();
  }
});
