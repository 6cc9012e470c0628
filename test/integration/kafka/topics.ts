// Plain kafkajs clients for the tests: a producer that writes the way other
// services would, and a reader that collects what landed on topics (blue,
// green, DLQ) so that every message can be accounted for.

import { Kafka, Partitioners, logLevel, type KafkaMessage, type Producer } from 'kafkajs';
// The tests' own clients get the adapter's fix of kafkajs's idle 1 ms timer
// loop too: unfixed, each of their broker connections re-arms a timer every
// millisecond for as long as the test runs (CPU the 2-core test machine
// shares with the turnout processes under test), and Node 24 prints a
// TimeoutNegativeWarning for it into the test output. It changes no request
// kafkajs sends.
import '../../../adapters/kafka/idle-loop.ts';
import { randomUUID } from 'node:crypto';
import type { MockCluster } from './cluster.ts';
import { waitFor } from '../../support/wait.ts';

export interface Out {
  key?: string;
  value: string | Buffer;
  headers?: Record<string, string>;
}

export interface Seen {
  topic: string;
  partition: number;
  offset: string;
  key: string | undefined;
  value: string;
  headers: Record<string, string>;
}

const client = (cluster: MockCluster): Kafka =>
  new Kafka({ brokers: cluster.brokers, clientId: 'turnout-test', logLevel: logLevel.NOTHING, retry: { retries: 3, initialRetryTime: 100 } });

/** Messages a group has committed on a topic: the sum of its committed offsets (offsets start at 0). */
export async function committedCount(cluster: MockCluster, groupId: string, topic: string): Promise<number> {
  const admin = client(cluster).admin();
  await admin.connect();
  try {
    const [t] = await admin.fetchOffsets({ groupId, topics: [topic] });
    return (t?.partitions ?? []).reduce((n, p) => n + Math.max(0, Number(p.offset)), 0);
  } finally {
    await admin.disconnect();
  }
}

export interface TestProducer {
  /** Sends in one request per call; resolves after the broker acknowledged. */
  send(topic: string, messages: Out[]): Promise<void>;
  close(): Promise<void>;
}

export async function testProducer(cluster: MockCluster): Promise<TestProducer> {
  const producer: Producer = client(cluster).producer({ allowAutoTopicCreation: false, createPartitioner: Partitioners.DefaultPartitioner });
  await producer.connect();
  return {
    async send(topic, messages) {
      await producer.send({ topic, acks: -1, messages: messages.map((m) => ({ key: m.key ?? null, value: m.value, headers: m.headers ?? {} })) });
    },
    close: () => producer.disconnect(),
  };
}

const decode = (topic: string, partition: number, m: KafkaMessage): Seen => {
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(m.headers ?? {})) {
    const one = Array.isArray(v) ? v[0] : v;
    if (one !== undefined) headers[k] = one.toString();
  }
  return { topic, partition, offset: m.offset, key: m.key?.toString(), value: m.value?.toString() ?? '', headers };
};

/**
 * Reads the given topics from the beginning (a fresh group) until `done`
 * says enough, then keeps reading for `quietMs` so that extra copies show.
 */
export async function readTopics(
  cluster: MockCluster,
  topics: string[],
  done: (seen: Seen[]) => boolean,
  options: { timeoutMs?: number; quietMs?: number } = {},
): Promise<Seen[]> {
  const consumer = client(cluster).consumer({ groupId: `reader-${randomUUID()}`, sessionTimeout: 6000, heartbeatInterval: 500, maxWaitTimeInMs: 200 });
  const seen: Seen[] = [];
  await consumer.connect();
  try {
    await consumer.subscribe({ topics, fromBeginning: true });
    await consumer.run({ eachMessage: async ({ topic, partition, message }) => void seen.push(decode(topic, partition, message)) });
    await waitFor(`messages on ${topics.join(', ')}`, () => done(seen), options.timeoutMs ?? 30_000, 50);
    await new Promise((r) => setTimeout(r, options.quietMs ?? 500));
  } finally {
    await consumer.disconnect();
  }
  return seen;
}
