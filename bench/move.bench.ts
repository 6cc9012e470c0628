// `turnout move` throughput (issue 13) against a plain client loop doing the
// same work in the same run: take one message from --from, publish it to --to,
// wait for the broker's confirmation, remove the original, next. Both move
// one message at a time (turnout does so to keep what a SIGKILL can duplicate
// to the one message in flight). A --rate row shows the limit is honoured.
//
//   amqp  baseline: amqplib basic.get, confirm-channel publish, ack.
//   sqs   baseline: ReceiveMessage (10), SendMessage, DeleteMessage (fauxqs emulator).
//   kafka baseline: kafkajs consumer in the group turnout-move-{from}, each record
//         sent (acks all) then its offset committed, up to the end offsets at the
//         start (librdkafka mock cluster). "Left on --from" is that group's lag.
//
// Per case a backlog of N messages is put on a fresh queue; throughput is
// N / wall time of the whole run (the turnout process's start-up included),
// and every message is accounted for: --to must hold exactly N, --from none.
//
//   node bench/move.bench.ts [--messages N] [--rate R] [--only amqp|sqs|kafka] [--out FILE]
//   (TURNOUT_BENCH_AMQP_URL, default amqp://guest:guest@127.0.0.1:5672)

import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { DeleteMessageCommand, GetQueueAttributesCommand, ReceiveMessageCommand, SendMessageBatchCommand, SendMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import * as amqp from 'amqplib';
import { Kafka, logLevel, Partitioners } from 'kafkajs';
import { startMockCluster, type MockCluster } from '../test/integration/kafka/cluster.ts';
import { startEmulator, type Emulator } from '../test/integration/sqs/fauxqs.ts';
import { describeMachine } from './lib/machine.ts';
import { benchPayload } from './lib/payload.ts';
import { childNodeArgs, cliEntryFor, runCompiled } from './lib/runtime.ts';
import { canConnect } from '../src/net.ts';
import { fmt, markdownTable, type Cell } from './lib/table.ts';

const AMQP_URL = process.env.TURNOUT_BENCH_AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
const CLI = cliEntryFor(import.meta.url, '../src/cli');
const PAYLOAD = benchPayload();

interface BrokerCase {
  name: string;
  env: Record<string, string>;
  newQueue(): Promise<string>;
  fill(queue: string, n: number): Promise<void>;
  /** Ready messages on a queue. */
  count(queue: string): Promise<number>;
  baseline(from: string, to: string): Promise<void>;
  close(): Promise<void>;
}

async function amqpCase(): Promise<BrokerCase> {
  const conn = await amqp.connect(AMQP_URL);
  const ch = await conn.createConfirmChannel();
  const created: string[] = [];
  return {
    name: 'RabbitMQ',
    env: { TURNOUT_BROKER: AMQP_URL },
    async newQueue() {
      const q = `turnout-bench.move.${randomUUID().slice(0, 8)}`;
      await ch.assertQueue(q, { durable: true });
      created.push(q);
      return q;
    },
    async fill(queue, n) {
      for (let i = 0; i < n; i++) ch.sendToQueue(queue, PAYLOAD, { persistent: true, messageId: randomUUID(), headers: { 'x-schema-version': '1' } });
      await ch.waitForConfirms();
    },
    count: async (queue) => (await ch.checkQueue(queue)).messageCount,
    async baseline(from, to) {
      // TCP_NODELAY as turnout's connection has it: otherwise Nagle's algorithm holds each small frame for the broker's delayed ACK.
      const c = await amqp.connect(AMQP_URL, { noDelay: true });
      const get = await c.createChannel();
      const pub = await c.createConfirmChannel();
      for (;;) {
        const m = await get.get(from, { noAck: false });
        if (m === false) break;
        await new Promise<void>((resolve, reject) => pub.sendToQueue(to, m.content, { ...m.properties, persistent: true }, (err: unknown) => (err ? reject(err) : resolve())));
        get.ack(m);
      }
      await c.close();
    },
    async close() {
      for (const q of created) await ch.deleteQueue(q).catch(() => {});
      await conn.close();
    },
  };
}

async function sqsCase(emu: Emulator): Promise<BrokerCase> {
  const client: SQSClient = emu.client;
  const urls = new Map<string, string>();
  const url = (q: string): string => urls.get(q) as string;
  return {
    name: 'SQS (fauxqs)',
    env: { TURNOUT_BROKER: 'sqs', ...emu.env },
    async newQueue() {
      const q = emu.name('bench-move');
      urls.set(q, await emu.createQueue(q));
      return q;
    },
    async fill(queue, n) {
      for (let i = 0; i < n; i += 10) {
        const entries = Array.from({ length: Math.min(10, n - i) }, (_, j) => ({ Id: String(j), MessageBody: PAYLOAD.toString('utf8') }));
        await client.send(new SendMessageBatchCommand({ QueueUrl: url(queue), Entries: entries }));
      }
    },
    async count(queue) {
      const out = await client.send(new GetQueueAttributesCommand({ QueueUrl: url(queue), AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'] }));
      return Number(out.Attributes?.ApproximateNumberOfMessages ?? 0) + Number(out.Attributes?.ApproximateNumberOfMessagesNotVisible ?? 0);
    },
    async baseline(from, to) {
      for (;;) {
        const r = await client.send(new ReceiveMessageCommand({ QueueUrl: url(from), MaxNumberOfMessages: 10, WaitTimeSeconds: 1, MessageAttributeNames: ['All'] }));
        const ms = r.Messages ?? [];
        if (ms.length === 0) break;
        for (const m of ms) {
          await client.send(new SendMessageCommand({ QueueUrl: url(to), MessageBody: m.Body ?? '', ...(m.MessageAttributes ? { MessageAttributes: m.MessageAttributes } : {}) }));
          await client.send(new DeleteMessageCommand({ QueueUrl: url(from), ReceiptHandle: m.ReceiptHandle }));
        }
      }
    },
    close: () => emu.stop(),
  };
}

async function kafkaCase(cluster: MockCluster): Promise<BrokerCase> {
  const kafka = new Kafka({ clientId: 'bench-move', brokers: cluster.brokers, logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner, allowAutoTopicCreation: false });
  await admin.connect();
  await producer.connect();
  const lag = async (topic: string, group: string): Promise<number> => {
    const ends = await admin.fetchTopicOffsets(topic);
    const [committed] = await admin.fetchOffsets({ groupId: group, topics: [topic] });
    let n = 0;
    for (const e of ends) {
      const c = Number(committed?.partitions.find((p) => p.partition === e.partition)?.offset ?? -1);
      n += Number(e.high) - Math.max(Number(e.low), c);
    }
    return n;
  };
  return {
    name: 'Kafka (mock cluster)',
    // the mock cluster cannot start an idempotent kafkajs producer
    env: { TURNOUT_BROKER: cluster.brokerUrl, TURNOUT_KAFKA_IDEMPOTENT: 'false', TURNOUT_KAFKA_SESSION_TIMEOUT: '6000' },
    newQueue: () => cluster.newTopic(4, 'bench-move'),
    async fill(topic, n) {
      for (let i = 0; i < n; i += 500) {
        await producer.send({ topic, acks: -1, messages: Array.from({ length: Math.min(500, n - i) }, () => ({ value: PAYLOAD, headers: { 'x-schema-version': '1' } })) });
      }
    },
    // The lag of the group a move of `topic` reads as: on --from what the move has not passed,
    // on --to (which nothing reads as that group) every record in the log.
    count: (topic) => lag(topic, `turnout-move-${topic}`),
    async baseline(from, to) {
      const ends = new Map((await admin.fetchTopicOffsets(from)).map((e) => [e.partition, BigInt(e.high)]));
      const done = new Set<number>();
      for (const [p, end] of ends) if (end === 0n) done.add(p);
      const consumer = kafka.consumer({ groupId: `turnout-move-${from}`, sessionTimeout: 6000, heartbeatInterval: 1000, maxWaitTimeInMs: 500 });
      await consumer.connect();
      await consumer.subscribe({ topic: from, fromBeginning: true });
      let finish: () => void = () => {};
      const finished = new Promise<void>((r) => (finish = r));
      if (done.size === ends.size) finish();
      await consumer.run({
        autoCommit: false,
        eachMessage: async ({ partition, message }) => {
          const end = ends.get(partition) ?? 0n;
          if (BigInt(message.offset) >= end) return;
          await producer.send({ topic: to, acks: -1, messages: [{ key: message.key, value: message.value, headers: message.headers ?? {}, partition }] });
          await consumer.commitOffsets([{ topic: from, partition, offset: String(BigInt(message.offset) + 1n) }]);
          if (BigInt(message.offset) + 1n >= end) {
            done.add(partition);
            if (done.size === ends.size) finish();
          }
        },
      });
      await finished;
      await consumer.disconnect();
    },
    async close() {
      await producer.disconnect();
      await admin.disconnect();
      await cluster.stop();
    },
  };
}

function runMoveProcess(env: Record<string, string>, args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [...childNodeArgs(), CLI, 'move', ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

async function measure(b: BrokerCase, n: number, label: string, run: (from: string, to: string) => Promise<void>): Promise<Cell[]> {
  const from = await b.newQueue();
  const to = await b.newQueue();
  await b.fill(from, n);
  const t0 = performance.now();
  await run(from, to);
  const s = (performance.now() - t0) / 1000;
  const [left, arrived] = [await b.count(from), await b.count(to)];
  const valid = left === 0 && arrived === n;
  return [b.name, label, n, fmt(s, 2), fmt(n / s), valid ? 'ok' : `INVALID (left ${left}, arrived ${arrived})`];
}

const compiled = await runCompiled(import.meta.url);
if (compiled !== undefined) process.exit(compiled);

const { values } = parseArgs({ options: { messages: { type: 'string', default: '2000' }, rate: { type: 'string', default: '200' }, only: { type: 'string' }, out: { type: 'string' } } });
const n = Number(values.messages);
const rate = Number(values.rate);
const rows: Cell[][] = [];
const cases: (() => Promise<BrokerCase | undefined>)[] = [
  async () => (values.only === undefined || values.only === 'amqp') && (await canConnect(new URL(AMQP_URL).hostname, Number(new URL(AMQP_URL).port || 5672), 2000)) ? amqpCase() : undefined,
  async () => (values.only === undefined || values.only === 'sqs' ? sqsCase(await startEmulator({ mode: 'child' })) : undefined),
  async () => (values.only === undefined || values.only === 'kafka' ? kafkaCase(await startMockCluster()) : undefined),
];
let invalid = false;
for (const make of cases) {
  const b = await make();
  if (!b) continue;
  try {
    rows.push(await measure(b, n, 'plain client loop', (from, to) => b.baseline(from, to)));
    rows.push(await measure(b, n, 'turnout move', async (from, to) => {
      const r = await runMoveProcess(b.env, ['--from', from, '--to', to]);
      if (r.code !== 0) throw new Error(`turnout move exited ${r.code}: ${r.stderr}`);
    }));
    const paced = Math.max(1, Math.min(n, rate * 3));
    rows.push(await measure(b, paced, `turnout move --rate ${rate}`, async (from, to) => {
      const r = await runMoveProcess(b.env, ['--from', from, '--to', to, '--rate', String(rate)]);
      if (r.code !== 0) throw new Error(`turnout move exited ${r.code}: ${r.stderr}`);
    }));
  } finally {
    await b.close();
  }
  invalid ||= rows.some((r) => String(r[5]).startsWith('INVALID'));
}
const table = markdownTable(['broker', 'mover', 'messages', 'seconds', 'messages/s', 'accounting'], rows);
const text = `## turnout move (${describeMachine()})\n\n${table}\n\nThe --rate row's messages/s must not exceed the rate (start-up included, it stays below it).\n`;
process.stdout.write(`${text}\n`);
if (values.out !== undefined) writeFileSync(values.out, text);
process.exit(invalid ? 1 : 0);
