// The adapter conformance suite against a real Kafka-protocol broker
// (librdkafka's mock cluster), through the adapter factory as the CLI uses it.

import { randomUUID } from 'node:crypto';
import { conformance } from '../../conformance/broker.conformance.ts';
import { startMockCluster } from './cluster.ts';
import { kafkaAdapter } from './env.ts';

const cluster = await startMockCluster();
// Marked before any client connects: the mock would otherwise create it on first mention.
const missing = `missing-${randomUUID().slice(0, 8)}`;
await cluster.markMissing(missing);

conformance({
  name: 'kafka (librdkafka mock cluster)',
  durable: true,
  quietMs: 500,
  // Group joins on the mock take 3 s, and a member leaving holds the group for session timeout − 1 s.
  timeoutMs: 25_000,
  create: () => kafkaAdapter(cluster),
  newQueue: () => cluster.newTopic(4, 'conf'),
  missingQueue: () => missing,
  teardown: () => cluster.stop(),
});
