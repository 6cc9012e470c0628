// turnout_kafka_buffered_bytes against the broker, through a real turnout
// process: while the app holds every delivery, what turnout fetched ahead
// shows on /metrics, per source and deferral topic, in whole records; once
// the app answers, every record is delivered once and the gauge falls to 0.
// Counted, not timed: the byte figures are multiples of the record size and
// bounded by what was produced.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startApp } from '../../support/app.ts';
import { metricValue, scrape } from '../../support/metrics.ts';
import { startTurnout } from '../../support/process.ts';
import { Tally } from '../../support/tally.ts';
import { waitFor } from '../../support/wait.ts';
import { startMockCluster, type MockCluster } from './cluster.ts';
import { kafkaEnv } from './env.ts';
import { testProducer } from './topics.ts';

const RECORDS = 300;
const RECORD_BYTES = 1024;

let cluster: MockCluster;
before(async () => {
  cluster = await startMockCluster();
});
after(() => cluster.stop());

test('turnout_kafka_buffered_bytes: what is fetched ahead while the app holds deliveries, per topic; 0 once all are delivered', async () => {
  const src = await cluster.newTopic(2, 'buffered');
  const deferTopic = `${src}.turnout-defer`;
  let release: () => void = () => {};
  const released = new Promise<void>((r) => (release = r));
  const app = await startApp(async () => {
    await released;
    return 200;
  });
  const producer = await testProducer(cluster);
  const payload = 'x'.repeat(RECORD_BYTES);
  await producer.send(src, Array.from({ length: RECORDS }, (_, i) => ({ key: `k-${i % 10}`, value: payload, headers: { 'x-turnout-id': `m-${i}` } })));
  await producer.close();

  const t = await startTurnout({ ...kafkaEnv(cluster), TURNOUT_SOURCE: src, TURNOUT_APP_URL: app.url, TURNOUT_DLQ: '{source}.dlq', TURNOUT_CONCURRENCY: '2' });
  try {
    const held = async (topic: string): Promise<number> => metricValue(await scrape(t.baseUrl), 'turnout_kafka_buffered_bytes', { source: src, topic });
    // Fetched ahead: more than the two deliveries the app holds.
    await waitFor('records fetched ahead of the held deliveries', async () => (await held(src)) > 2 * RECORD_BYTES, 30_000, 100);
    const text = await scrape(t.baseUrl);
    const bytes = metricValue(text, 'turnout_kafka_buffered_bytes', { source: src, topic: src });
    assert.equal(bytes % RECORD_BYTES, 0, `whole records of ${RECORD_BYTES} bytes: ${bytes}`);
    assert.ok(bytes <= RECORDS * RECORD_BYTES, `no more than was produced: ${bytes}`);
    assert.match(text, new RegExp(`^turnout_kafka_buffered_bytes\\{source="${src}",topic="${deferTopic.replaceAll('.', '\\.')}"\\} 0$`, 'm'), 'the deferral topic has its series, empty');
    assert.ok(app.active() <= 2, 'the app holds at most TURNOUT_CONCURRENCY deliveries');

    release();
    await waitFor(`all ${RECORDS} delivered`, () => app.accepted.size === RECORDS, 60_000);
    await waitFor('the gauge back at 0', async () => (await held(src)) === 0, 10_000, 100);
    const tally = new Tally();
    for (const d of app.deliveries) tally.record('delivered', d.id);
    assert.deepEqual(tally.missing(Array.from({ length: RECORDS }, (_, i) => `m-${i}`)), [], 'every record delivered');
    assert.deepEqual(tally.duplicates(), [], 'each once');
    assert.equal(await t.stop(), 0, t.output());
  } finally {
    release();
    await t.kill();
    await app.close();
  }
});
