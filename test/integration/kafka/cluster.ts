// Starts librdkafka's mock cluster (test/kafka/mock-cluster, built by
// scripts/test-setup.d/30-kafka.sh) for one test file and stops it after.
// The launcher exits when its stdin closes, so a test process that dies
// never leaves a broker behind.

import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';

const BINARY = fileURLToPath(new URL('../../kafka/mock-cluster', import.meta.url));

export interface MockCluster {
  /** host:port,host:port */
  bootstrap: string;
  /** TURNOUT_BROKER value. */
  brokerUrl: string;
  brokers: string[];
  /** A new topic with this many partitions (the mock has no CreateTopics; it takes a command). */
  createTopic(name: string, partitions: number): Promise<void>;
  /** A fresh name for a topic that exists, with `partitions` partitions. */
  newTopic(partitions?: number, prefix?: string): Promise<string>;
  /**
   * Makes the broker answer UNKNOWN_TOPIC_OR_PARTITION for this name, as a
   * broker with auto-creation off does for a topic that does not exist (the
   * mock otherwise creates every topic a Metadata request names). The mock
   * then also lists it with that error in all-topics Metadata, which a real
   * broker would not; turnout never asks for all topics.
   */
  markMissing(name: string): Promise<void>;
  /** Undoes markMissing: the topic exists (with the mock's default 4 partitions unless created before). */
  restore(name: string): Promise<void>;
  /**
   * The next `count` Produce requests (any client, any topic) fail with this
   * Kafka error code, e.g. 10 (MESSAGE_TOO_LARGE), as a broker refuses a
   * record past its message.max.bytes (the mock does not check sizes itself).
   */
  failProduce(code: number, count: number): Promise<void>;
  stop(): Promise<void>;
}

export async function startMockCluster(brokerCount = 1): Promise<MockCluster> {
  if (!existsSync(BINARY)) {
    throw new Error(`${BINARY} is missing: run \`bash scripts/test-setup.d/30-kafka.sh\` (scripts/test.sh does) to build it`);
  }
  const child: ChildProcessWithoutNullStreams = spawn(BINARY, [String(brokerCount)], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  const lines = createInterface({ input: child.stdout });
  const waiting: ((line: string) => void)[] = [];
  const early: string[] = [];
  lines.on('line', (line) => {
    const w = waiting.shift();
    if (w) w(line);
    else early.push(line);
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const nextLine = (): Promise<string> => {
    const line = early.shift();
    if (line !== undefined) return Promise.resolve(line);
    return new Promise((resolve, reject) => {
      waiting.push(resolve);
      void exited.then((code) => reject(new Error(`mock cluster exited (${code}): ${stderr}`)));
    });
  };
  // Commands are answered in order, one line each.
  let chain: Promise<unknown> = Promise.resolve();
  const command = (cmd: string): Promise<void> => {
    const run = chain.then(async () => {
      child.stdin.write(`${cmd}\n`);
      const answer = await nextLine();
      if (answer !== 'ok') throw new Error(`mock cluster: "${cmd}" → ${answer}`);
    });
    chain = run.catch(() => {});
    return run;
  };

  const bootstrap = await nextLine();
  const brokers = bootstrap.split(',');
  const cluster: MockCluster = {
    bootstrap,
    brokers,
    brokerUrl: `kafka://${bootstrap}`,
    createTopic: (name, partitions) => command(`create ${name} ${partitions}`),
    async newTopic(partitions = 4, prefix = 't') {
      const name = `${prefix}-${randomUUID().slice(0, 8)}`;
      await cluster.createTopic(name, partitions);
      return name;
    },
    markMissing: (name) => command(`missing ${name}`),
    restore: (name) => command(`restore ${name}`),
    failProduce: (code, count) => command(`fail-produce ${code} ${count}`),
    async stop() {
      child.stdin.end();
      const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
      await exited;
      clearTimeout(timer);
    },
  };
  return cluster;
}
