// The shared buffer bound of a Kafka subscription (adapters/kafka/fetch-budget.ts)
// against the broker: a backlog on 16 partitions that the per-partition bound
// alone would let the subscription hold almost whole stays within the shared
// bound plus a floor per partition, four partitions whose heads fail for the
// whole first phase do not stop the other twelve, and every record is
// finished exactly once. Smaller bounds than the defaults, so the test moves
// megabytes, not hundreds of them; counted, not timed.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Kafka } from 'kafkajs';
import '../../../adapters/kafka/idle-loop.ts';
import type { Disposition, Received } from '../../../adapters/broker.ts';
import type { FetchLimits } from '../../../adapters/kafka/fetch-budget.ts';
import { kafkaSettings } from '../../../adapters/kafka/options.ts';
import { KafkaSubscription } from '../../../adapters/kafka/subscription.ts';
import { createLogger } from '../../../lib/log.ts';
import { logSink } from '../../support/log-sink.ts';
import { jsonLines } from '../../support/process.ts';
import { sleep, waitFor } from '../../support/wait.ts';
import { startMockCluster, type MockCluster } from './cluster.ts';
import { kafkaContext, SESSION_TIMEOUT_MS } from './env.ts';

const PARTITIONS = 16;
const PER_PARTITION = 150;
const RECORD_BYTES = 2048;
/** Records per produce request per partition: the mock answers a fetch with one such batch per partition. */
const BATCH = 10;
const STUCK = new Set([0, 1, 2, 3]);
const LIMITS: FetchLimits = { partitionRecords: 1000, partitionBytes: 1 << 20, totalBytes: 256 << 10, floorRecords: 16, floorBytes: 32 << 10 };

let cluster: MockCluster;
before(async () => {
  cluster = await startMockCluster();
});
after(() => cluster.stop());

test('16 partitions of backlog: the subscription holds at most the shared bound plus a floor each; stuck partitions do not stop the others', async (t) => {
  const topic = await cluster.newTopic(PARTITIONS, 'budget');
  const deferTopic = `${topic}.turnout-defer`;
  await cluster.createTopic(deferTopic, PARTITIONS);
  const { config } = kafkaContext(cluster);
  const log = logSink();
  const logger = createLogger('info', log.stream);
  const kafka = new Kafka(kafkaSettings(config, logger).client);
  const producer = kafka.producer({ allowAutoTopicCreation: false });
  await producer.connect();
  const payload = Buffer.alloc(RECORD_BYTES, 'x');
  for (let start = 0; start < PER_PARTITION; start += BATCH) {
    await Promise.all(Array.from({ length: PARTITIONS }, (_, partition) => producer.send({
      topic,
      acks: -1,
      messages: Array.from({ length: BATCH }, (_, i) => ({ partition, value: payload, headers: { 'x-turnout-id': `p${partition}-${start + i}` } })),
    })));
  }
  await producer.disconnect();
  const total = PARTITIONS * PER_PARTITION;

  const finished = new Map<string, number>();
  const partitionOf = (id: string): number => Number(/^p(\d+)-/.exec(id)?.[1]);
  const healthyDone = (): number => [...finished.keys()].filter((id) => !STUCK.has(partitionOf(id))).length;
  let stuck = true;
  let stuckTries = 0;
  let maxBuffered = 0;
  let sub: KafkaSubscription | undefined;
  const handler = async (m: Received): Promise<Disposition> => {
    maxBuffered = Math.max(maxBuffered, sub?.buffered ?? 0);
    if (stuck && STUCK.has(partitionOf(m.id))) {
      stuckTries++;
      return { kind: 'release' };
    }
    await sleep(1);
    finished.set(m.id, (finished.get(m.id) ?? 0) + 1);
    return { kind: 'ack' };
  };
  sub = new KafkaSubscription({
    kafka, source: topic, deferTopic, group: `g-${topic}`, prefetch: 8, handler,
    defer: () => Promise.reject(new Error('nothing is deferred in this test')),
    sessionTimeoutMs: SESSION_TIMEOUT_MS, fetchWaitMs: config.kafkaFetchWait, limits: LIMITS, logger,
  });
  try {
    await sub.start();
    const healthy = (PARTITIONS - STUCK.size) * PER_PARTITION;
    await waitFor(`the ${healthy} records of the healthy partitions`, () => healthyDone() === healthy, 120_000, 50);
    assert.ok(stuckTries > 0, 'the stuck partitions were handed out (and failed) meanwhile');
    assert.equal(finished.size, healthy, 'nothing of a stuck partition finished');
    stuck = false;
    await waitFor(`all ${total} records`, () => finished.size === total, 120_000, 50);
    await sleep(300); // a second copy, if any, would arrive now
    assert.deepEqual([...finished.values()].filter((n) => n !== 1), [], 'every record finished exactly once');
    assert.equal(finished.size, total);

    // One batch past the floor per partition, on top of the shared bound: the most it can hold.
    t.diagnostic(`held at most ${maxBuffered} bytes of the ${total * RECORD_BYTES}-byte backlog; the stuck partitions failed ${stuckTries} times meanwhile`);
    const ceiling = LIMITS.totalBytes + PARTITIONS * (LIMITS.floorBytes + BATCH * RECORD_BYTES);
    assert.ok(maxBuffered <= ceiling, `held at most ${maxBuffered} bytes (ceiling ${ceiling})`);
    assert.ok(maxBuffered < (total * RECORD_BYTES) / 2, `without the shared bound it would hold most of the ${total * RECORD_BYTES}-byte backlog; held ${maxBuffered}`);
    assert.equal(sub.buffered, 0, 'nothing is counted once everything finished');
    const said = jsonLines(log.lines.join('')).filter((l) => String(l.msg).includes('reached the shared buffer bound'));
    assert.equal(said.length, 1, 'reaching the bound is logged once a minute at most');
    assert.ok(Number(said[0]?.bufferedBytes) >= LIMITS.totalBytes);
  } finally {
    await sub.stop();
    await sub.close();
  }
});
