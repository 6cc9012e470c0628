// The blue/green migration story on Kafka, with three real turnout
// processes: a router consumes the source topic into blue/green by a sticky
// weighted rule; the old consumer reads blue; the new consumer reads green and
// its dead-letter target is blue, so a message the new app cannot handle is
// processed by the old one. Every message is processed by exactly one side.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startApp } from '../../support/app.ts';
import { metricValue, scrape } from '../../support/metrics.ts';
import { depthOf, startTurnout } from '../../support/process.ts';
import { waitFor } from '../../support/wait.ts';
import { startMockCluster, type MockCluster } from './cluster.ts';
import { kafkaEnv } from './env.ts';
import { testProducer } from './topics.ts';

let cluster: MockCluster;
before(async () => {
  cluster = await startMockCluster();
});
after(() => cluster.stop());

test('blue/green migration: sticky split, green failures flow back to blue, each message processed by exactly one side', async () => {
  const src = await cluster.newTopic(4, 'orders');
  const blue = `${src}.blue`;
  const green = `${src}.green`;
  for (const t of [blue, green]) await cluster.createTopic(t, 4);
  for (const t of [`${src}.dlq`, `${blue}.dlq`]) await cluster.createTopic(t, 1);

  const oldApp = await startApp(() => 200);
  // The new app cannot handle "fragile" orders yet (answers 500 every time).
  const newApp = await startApp((d) => (JSON.parse(d.body.toString()).fragile ? 500 : 200));
  const env = kafkaEnv(cluster);
  const router = await startTurnout({ ...env, TURNOUT_SOURCE: src, TURNOUT_BLUE: blue, TURNOUT_GREEN: green, TURNOUT_GREEN_WEIGHT: '30', TURNOUT_DLQ: '{source}.dlq', TURNOUT_ADMIN_TOKEN: 'ops' });
  const oldSide = await startTurnout({ ...env, TURNOUT_SOURCE: blue, TURNOUT_APP_URL: oldApp.url, TURNOUT_DLQ: '{source}.dlq' });
  const newSide = await startTurnout({ ...env, TURNOUT_SOURCE: green, TURNOUT_APP_URL: newApp.url, TURNOUT_DLQ: blue, TURNOUT_MAX_ATTEMPTS: '2', TURNOUT_RETRY_BACKOFF: '20' });
  const producer = await testProducer(cluster);
  try {
    const keys = Array.from({ length: 60 }, (_, i) => `customer-${i}`);
    const sent = new Map<string, { key: string; fragile: boolean }>();
    const publishRound = async (round: number, perKey: number): Promise<void> => {
      const out = [];
      for (let n = 0; n < perKey; n++) {
        for (const [i, key] of keys.entries()) {
          const id = `${round}-${key}-${n}`;
          const fragile = (i + n) % 10 === 0;
          sent.set(id, { key, fragile });
          out.push({ key, value: JSON.stringify({ id, fragile }), headers: { 'x-turnout-id': id, 'x-schema-version': '1' } });
        }
      }
      await producer.send(src, out);
    };
    const processed = (id: string): number => (oldApp.accepted.get(id)?.length ?? 0) + (newApp.accepted.get(id)?.length ?? 0);
    // The side the router chose: green if the new app ever saw it (a green failure then ends on blue).
    const sideOf = (id: string): 'blue' | 'green' | undefined =>
      newApp.deliveries.some((d) => d.id === id) ? 'green' : oldApp.accepted.has(id) ? 'blue' : undefined;

    // Round 1 at 30 %.
    await publishRound(1, 5);
    await waitFor('round 1 processed', () => [...sent.keys()].every((id) => processed(id) > 0), 60_000);

    const round1 = [...sent.keys()];
    const keySide = new Map<string, string>();
    for (const id of round1) {
      const { key } = sent.get(id)!;
      const side = sideOf(id) as string;
      assert.ok(!keySide.has(key) || keySide.get(key) === side, `${key} was routed to both sides`);
      keySide.set(key, side);
    }
    const greenKeys = [...keySide.values()].filter((s) => s === 'green').length;
    assert.ok(greenKeys >= 6 && greenKeys <= 33, `about 30 % of 60 keys on green, got ${greenKeys}`);

    // Ramp to 100 %: every key moves to green; a green failure still ends on blue.
    const put = await fetch(`${router.baseUrl}/v1/routes/green-weight`, { method: 'PUT', headers: { authorization: 'Bearer ops', 'content-type': 'application/json' }, body: '{"weight":100}' });
    assert.equal(put.status, 200);
    await publishRound(2, 1);
    await waitFor('round 2 processed', () => [...sent.keys()].every((id) => processed(id) > 0), 60_000);
    for (const id of sent.keys()) if (id.startsWith('2-')) assert.equal(sideOf(id), 'green', `${id} went to green at 100 %`);

    await waitFor('all lags 0', async () =>
      (await depthOf(router.baseUrl, src)) === 0 && (await depthOf(oldSide.baseUrl, blue)) === 0 && (await depthOf(newSide.baseUrl, green)) === 0, 20_000);
    await new Promise((r) => setTimeout(r, 500));

    // Every message processed by exactly one side, exactly once.
    for (const [id, { fragile }] of sent) {
      assert.equal(processed(id), 1, `${id} processed ${processed(id)} times`);
      const viaGreen = sideOf(id) === 'green';
      if (fragile && viaGreen) {
        assert.ok(oldApp.accepted.has(id), `${id}: green failure processed by blue`);
        const d = oldApp.accepted.get(id)![0]!;
        assert.equal(d.headers['x-turnout-dlq-reason'], 'max-attempts', 'arrived on blue as green\'s dead letter');
        assert.equal(d.headers['x-turnout-attempts'], '2', 'after TURNOUT_MAX_ATTEMPTS on green');
      }
      if (!fragile && viaGreen) assert.ok(newApp.accepted.has(id), `${id} handled by green`);
    }
    const m = await scrape(router.baseUrl);
    const routedGreen = metricValue(m, 'turnout_messages_routed_total', { color: 'green' });
    const routedBlue = metricValue(m, 'turnout_messages_routed_total', { color: 'blue' });
    assert.equal(routedGreen + routedBlue, sent.size, 'the router routed every message once');
    assert.equal(await depthOf(router.baseUrl, `${src}.dlq`), 0, 'nothing dead-lettered by the router');
    assert.equal(await depthOf(oldSide.baseUrl, `${blue}.dlq`), 0, 'nothing dead-lettered by the old side');
    for (const t of [router, oldSide, newSide]) assert.equal(await t.stop(), 0);
    // Every line is a JSON log entry (kafkajs 2.2.4 made Node 24 print a plain TimeoutNegativeWarning line here before idle-loop.ts).
    for (const t of [router, oldSide, newSide]) {
      const plain = t.output().split('\n').filter((l) => l.trim() !== '' && !l.startsWith('{'));
      assert.deepEqual(plain, [], 'every line turnout writes is a JSON log entry');
    }
  } finally {
    await producer.close();
    for (const t of [router, oldSide, newSide]) await t.kill();
    await oldApp.close();
    await newApp.close();
  }
});
