// A turnout consuming from Kafka is killed (SIGKILL) in the middle of a
// stream and started again: offsets were committed only after each
// message's outcome was final, so nothing is skipped; what was in flight or
// finished-but-uncommitted comes again (at-least-once), and nothing more.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startApp } from '../../support/app.ts';
import { metricValue, scrape } from '../../support/metrics.ts';
import { depthOf, startTurnout } from '../../support/process.ts';
import { waitFor } from '../../support/wait.ts';
import { startMockCluster, type MockCluster } from './cluster.ts';
import { kafkaEnv } from './env.ts';
import { committedCount, testProducer } from './topics.ts';

let cluster: MockCluster;
before(async () => {
  cluster = await startMockCluster();
});
after(() => cluster.stop());

test('killed mid-stream and restarted: every message delivered, nothing skipped, few duplicates', async () => {
  const src = await cluster.newTopic(4, 'crash');
  await cluster.createTopic(`${src}.dlq`, 1);
  const concurrency = 8;
  const app = await startApp(() => ({ status: 200, delayMs: 5 }));
  const env = { ...kafkaEnv(cluster), TURNOUT_SOURCE: src, TURNOUT_APP_URL: app.url, TURNOUT_DLQ: '{source}.dlq', TURNOUT_CONCURRENCY: String(concurrency) };

  const total = 600;
  const ids = Array.from({ length: total }, (_, i) => `m-${i}`);
  const producer = await testProducer(cluster);
  for (let i = 0; i < total; i += 100) {
    await producer.send(src, ids.slice(i, i + 100).map((id, j) => ({ key: `k${(i + j) % 30}`, value: JSON.stringify({ id }), headers: { 'x-turnout-id': id } })));
  }
  await producer.close();

  const first = await startTurnout(env);
  let second: Awaited<ReturnType<typeof startTurnout>> | undefined;
  try {
    assert.equal(await depthOf(first.baseUrl, src), total, 'the group has not committed anything yet: all 600 wait');
    await waitFor('a quarter delivered', () => app.accepted.size >= total / 4, 30_000, 5);
    await first.kill();
    await new Promise((r) => setTimeout(r, 100)); // requests the dead process had open finish at the app
    const atKill = app.accepted.size;
    assert.ok(atKill < total, `killed mid-stream (${atKill} of ${total} done)`);
    // What the dead process had committed: messages below these offsets must not come again.
    const committed = await committedCount(cluster, `turnout-${src}`, src);
    assert.ok(committed <= atKill, `committed (${committed}) only what the app had accepted (${atKill})`);

    second = await startTurnout(env);
    await waitFor('all 600 delivered', () => ids.every((id) => app.accepted.has(id)), 60_000);
    await waitFor('lag 0', async () => (await depthOf(second!.baseUrl, src)) === 0, 15_000);
    await new Promise((r) => setTimeout(r, 500));

    const missing = ids.filter((id) => !app.accepted.has(id));
    assert.deepEqual(missing, [], 'nothing skipped');
    assert.equal(app.accepted.size, total, 'nothing that was not published');
    const dups = ids.filter((id) => (app.accepted.get(id)?.length ?? 0) > 1);
    // Only what the app had accepted but the group had not committed at the kill comes again.
    assert.ok(dups.length <= atKill - committed, `${dups.length} duplicates after the kill; accepted but uncommitted then: ${atKill - committed}`);
    for (const id of dups) assert.equal(app.accepted.get(id)?.length, 2, `${id} delivered at most twice`);
    const m = await scrape(second.baseUrl);
    assert.ok(metricValue(m, 'turnout_messages_delivered_total', { source: src }) >= total - atKill, 'the restarted turnout delivered the rest');
    console.log(`crash test: ${atKill} delivered before the kill, ${committed} committed, ${dups.length} delivered twice`);
    assert.equal(await second.stop(), 0);
  } finally {
    await first.kill();
    await second?.kill();
    await app.close();
  }
});

