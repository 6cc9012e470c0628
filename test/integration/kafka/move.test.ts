// The move suite against a Kafka-protocol broker (librdkafka's mock cluster).

import { randomUUID } from 'node:crypto';
import { after } from 'node:test';
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
  create: () => kafkaAdapter(cluster),
  newQueue: () => cluster.newTopic(4, 'move-cli'),
  timeoutMs: 40_000,
});

after(() => cluster.stop());
