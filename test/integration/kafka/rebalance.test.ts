// A second turnout joins the consumer group while the first has messages in
// flight: the group rebalances, partitions are split, work on partitions the
// first one lost is abandoned without committing past it, and every message
// is still delivered (duplicates only at-least-once). Then the first one
// leaves (SIGTERM) and the second takes over what is left.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startApp } from '../../support/app.ts';
import { metricValue, scrape } from '../../support/metrics.ts';
import { depthOf, startTurnout, type TurnoutProcess } from '../../support/process.ts';
import { waitFor } from '../../support/wait.ts';
import { startMockCluster, type MockCluster } from './cluster.ts';
import { kafkaEnv } from './env.ts';
import { testProducer } from './topics.ts';

let cluster: MockCluster;
before(async () => {
  cluster = await startMockCluster();
});
after(() => cluster.stop());

const delivered = async (t: TurnoutProcess, src: string): Promise<number> =>
  metricValue(await scrape(t.baseUrl), 'turnout_messages_delivered_total', { source: src });

test('rebalance while messages are in flight: every message delivered, work split, nothing skipped', async () => {
  const src = await cluster.newTopic(4, 'rebal');
  await cluster.createTopic(`${src}.dlq`, 1);
  const concurrency = 4;
  // Held while B starts: A then certainly has messages in flight (on a loaded machine A could finish
  // the whole stream during B's start-up, and "in flight when B joined" was a race).
  let hold: Promise<void> | undefined;
  let release = (): void => {};
  const app = await startApp(async () => {
    if (hold) await hold;
    return { status: 200, delayMs: 60 };
  });
  const env = { ...kafkaEnv(cluster), TURNOUT_SOURCE: src, TURNOUT_APP_URL: app.url, TURNOUT_DLQ: '{source}.dlq', TURNOUT_CONCURRENCY: String(concurrency) };

  const total = 240;
  const ids = Array.from({ length: total }, (_, i) => `r-${i}`);
  const producer = await testProducer(cluster);
  await producer.send(src, ids.map((id, i) => ({ key: `k${i % 40}`, value: JSON.stringify({ id }), headers: { 'x-turnout-id': id } })));
  await producer.close();

  const a = await startTurnout(env);
  let b: TurnoutProcess | undefined;
  try {
    await waitFor('a first share delivered by A', () => app.accepted.size >= 20, 30_000, 10);
    hold = new Promise<void>((r) => (release = r));
    await waitFor('deliveries of A held in the app', () => app.active() > 0, 10_000, 10);
    b = await startTurnout(env).finally(() => release());
    const inFlightAtJoin = app.active();
    assert.ok(inFlightAtJoin > 0, 'A had messages in flight when B joined');
    await waitFor('B took partitions and delivered', async () => (await delivered(b!, src)) > 0, 30_000, 100);
    const aAtSplit = await delivered(a, src);
    await waitFor('A goes on with the partitions it kept', async () => (await delivered(a, src)) > aAtSplit, 10_000, 50);
    const byA = await delivered(a, src);
    // A leaves gracefully; B gets A's partitions and finishes the stream.
    assert.equal(await a.stop(), 0);
    await waitFor('all delivered', () => ids.every((id) => app.accepted.has(id)), 60_000);
    await waitFor('lag 0', async () => (await depthOf(b!.baseUrl, src)) === 0, 15_000);
    await new Promise((r) => setTimeout(r, 500));

    assert.deepEqual(ids.filter((id) => !app.accepted.has(id)), [], 'nothing skipped');
    assert.equal(app.accepted.size, total);
    const dups = ids.filter((id) => (app.accepted.get(id)?.length ?? 0) > 1);
    // Two hand-overs (join, leave); each can repeat what was in flight or not yet committed.
    assert.ok(dups.length <= 8 * concurrency, `${dups.length} duplicates`);
    const byB = await delivered(b, src);
    assert.ok(byA > 0 && byB > 0, `both delivered (A ${byA}, B ${byB})`);
    console.log(`rebalance test: in flight at join ${inFlightAtJoin}, A ${byA} (until it left), B ${byB}, duplicates ${dups.length}`);
    assert.equal(await b.stop(), 0);
  } finally {
    await a.kill();
    await b?.kill();
    await app.close();
  }
});
