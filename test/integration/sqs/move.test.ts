// The move suite against the fauxqs SQS emulator.

import { randomUUID } from 'node:crypto';
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { ChangeMessageVisibilityCommand, DeleteMessageCommand, GetQueueUrlCommand, ReceiveMessageCommand, SendMessageCommand } from '@aws-sdk/client-sqs';
import { createLogger } from '../../../lib/log.ts';
import { runMove } from '../../../src/migrate/move.ts';
import { capabilities } from '../../../adapters/sqs/capabilities.ts';
import { cliSuite } from '../../migrate/cli.suite.ts';
import { moveSuite } from '../../migrate/move.suite.ts';
import { sqsAdapter } from './adapter.ts';
import { startEmulator } from './fauxqs.ts';

const emu = await startEmulator();

moveSuite({
  name: 'sqs',
  capabilities,
  quietMs: 500,
  async create() {
    const b = sqsAdapter({}, { waitTimeSeconds: 1 });
    await b.connect();
    return b;
  },
  async newQueue() {
    const name = emu.name('move');
    await emu.createQueue(name);
    return name;
  },
  missingQueue: () => `missing-${randomUUID()}`,
});

cliSuite({
  name: 'sqs',
  env: { TURNOUT_BROKER: 'sqs', ...emu.env },
  async create() {
    const b = sqsAdapter({}, { waitTimeSeconds: 1 });
    await b.connect();
    return b;
  },
  // A short visibility timeout: what the killed move held is visible again 5 s later.
  async newQueue() {
    const name = emu.name('move-cli');
    await emu.createQueue(name, { VisibilityTimeout: '5' });
    return name;
  },
  heldBackMs: 5500,
  // A receive runs fauxqs's visibility timers; the message it takes goes straight back (visibility 0).
  async refresh(queue) {
    const url = (await emu.client.send(new GetQueueUrlCommand({ QueueName: queue }))).QueueUrl;
    const r = await emu.client.send(new ReceiveMessageCommand({ QueueUrl: url, MaxNumberOfMessages: 1, WaitTimeSeconds: 0 }));
    for (const m of r.Messages ?? []) await emu.client.send(new ChangeMessageVisibilityCommand({ QueueUrl: url, ReceiptHandle: m.ReceiptHandle, VisibilityTimeout: 0 }));
  },
});

test('FIFO to FIFO: each group keeps its order, every message keeps its group and deduplication id', async () => {
  const from = emu.name('move-fifo') + '.fifo';
  const to = emu.name('move-fifo') + '.fifo';
  const fromUrl = await emu.createQueue(from);
  const toUrl = await emu.createQueue(to);
  // A plain producer: its own group and deduplication ids, three groups interleaved.
  const sent: { body: string; group: string; dedup: string }[] = [];
  for (let i = 0; i < 30; i++) {
    const m = { body: `m-${i}`, group: `g-${i % 3}`, dedup: `d-${randomUUID()}` };
    sent.push(m);
    await emu.client.send(new SendMessageCommand({ QueueUrl: fromUrl, MessageBody: m.body, MessageGroupId: m.group, MessageDeduplicationId: m.dedup }));
  }
  const a = sqsAdapter({}, { waitTimeSeconds: 1 });
  await a.connect();
  try {
    const s = await runMove(a, { from, to, where: [], dryRun: false, maxMoves: 3, group: `turnout-move-${from}`, versionHeader: 'x-schema-version', defaultVersion: 1, logger: createLogger('silent') });
    assert.deepEqual({ moved: s.moved, remaining: s.remaining, failed: s.failed }, { moved: 30, remaining: 0, failed: 0 });
  } finally {
    await a.close();
  }
  const got: { body: string; group: string; dedup: string }[] = [];
  while (got.length < 30) {
    const r = await emu.client.send(new ReceiveMessageCommand({ QueueUrl: toUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1, MessageSystemAttributeNames: ['MessageGroupId', 'MessageDeduplicationId'] }));
    const ms = r.Messages ?? [];
    assert.ok(ms.length > 0, `only ${got.length} of 30 arrived`);
    for (const m of ms) {
      got.push({ body: m.Body ?? '', group: m.Attributes?.MessageGroupId ?? '', dedup: m.Attributes?.MessageDeduplicationId ?? '' });
      await emu.client.send(new DeleteMessageCommand({ QueueUrl: toUrl, ReceiptHandle: m.ReceiptHandle }));
    }
  }
  const byBody = new Map(sent.map((m) => [m.body, m]));
  for (const m of got) assert.deepEqual(m, byBody.get(m.body), 'same group and deduplication id');
  assert.equal(new Set(got.map((m) => m.body)).size, 30, 'each once');
  for (const g of ['g-0', 'g-1', 'g-2']) {
    assert.deepEqual(got.filter((m) => m.group === g).map((m) => m.body), sent.filter((m) => m.group === g).map((m) => m.body), `order of ${g}`);
  }
  assert.deepEqual(await emu.counts(from), { visible: 0, inflight: 0, delayed: 0 });
});

after(() => emu.stop());
