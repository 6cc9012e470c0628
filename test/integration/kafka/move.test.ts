// The move suite against a Kafka-protocol broker (librdkafka's mock cluster).

import { randomUUID } from 'node:crypto';
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { Kafka, Partitioners, logLevel } from 'kafkajs';
import { createLogger } from '../../../lib/log.ts';
import { runMove } from '../../../src/migrate/move.ts';
import { waitFor } from '../../support/wait.ts';
import { capabilities } from '../../../adapters/kafka/capabilities.ts';
import { cliSuite } from '../../migrate/cli.suite.ts';
import { moveSuite } from '../../migrate/move.suite.ts';
import { startMockCluster } from './cluster.ts';
import { kafkaAdapter, kafkaEnv } from './env.ts';

const cluster = await startMockCluster();
// Marked before any client connects: the mock would otherwise create it on first mention.
const missing = `missing-${randomUUID().slice(0, 8)}`;
await cluster.markMissing(missing);

moveSuite({
  name: 'kafka (librdkafka mock cluster)',
  capabilities,
  quietMs: 500,
  timeoutMs: 40_000,
  create: () => kafkaAdapter(cluster),
  newQueue: () => cluster.newTopic(4, 'move'),
  missingQueue: () => missing,
});

cliSuite({
  name: 'kafka (librdkafka mock cluster)',
  env: kafkaEnv(cluster),
  log: true,
  create: () => kafkaAdapter(cluster),
  newQueue: () => cluster.newTopic(4, 'move-cli'),
  timeoutMs: 40_000,
});

test('key and partitioning are kept: a keyed record lands where its key hashes, one without a key keeps its partition', async () => {
  const from = await cluster.newTopic(4, 'move-part');
  const to = await cluster.newTopic(4, 'move-part');
  const kafka = new Kafka({ clientId: 'move-test', brokers: cluster.brokers, logLevel: logLevel.NOTHING });
  const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner, allowAutoTopicCreation: false });
  await producer.connect();
  const messages = [
    ...Array.from({ length: 12 }, (_, i) => ({ key: `customer-${i}`, value: `keyed-${i}` })),
    ...Array.from({ length: 12 }, (_, i) => ({ key: null, value: `unkeyed-${i}`, partition: i % 4 })),
  ];
  await producer.send({ topic: from, acks: -1, messages });
  await producer.disconnect();

  const where = new Map<string, { partition: number; key: string | null }>();
  const read = async (topic: string, n: number): Promise<Map<string, { partition: number; key: string | null }>> => {
    const out = new Map<string, { partition: number; key: string | null }>();
    const consumer = kafka.consumer({ groupId: `check-${randomUUID()}`, sessionTimeout: 6000, heartbeatInterval: 1000, maxWaitTimeInMs: 200 });
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    await consumer.run({ eachMessage: async ({ partition, message }) => void out.set(message.value?.toString() ?? '', { partition, key: message.key?.toString() ?? null }) });
    await waitFor(`${n} records on ${topic}`, () => out.size >= n, 30_000);
    await consumer.disconnect();
    return out;
  };
  for (const [k, v] of await read(from, 24)) where.set(k, v);

  const a = await kafkaAdapter(cluster);
  try {
    const s = await runMove(a, { from, to, where: [], dryRun: false, maxMoves: 3, group: `turnout-move-${from}`, versionHeader: 'x-schema-version', defaultVersion: 1, logger: createLogger('silent') });
    assert.deepEqual({ moved: s.moved, remaining: s.remaining, failed: s.failed }, { moved: 24, remaining: 0, failed: 0 });
  } finally {
    await a.close();
  }
  const moved = await read(to, 24);
  assert.equal(moved.size, 24);
  for (const [value, original] of where) assert.deepEqual(moved.get(value), original, value);
});

after(() => cluster.stop());
