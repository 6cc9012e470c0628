// SQS-specific behaviour of the adapter against fauxqs: long work beyond the
// visibility timeout, FIFO order, the queue's own RedrivePolicy, deferrals
// vs maxReceiveCount, the 10-attribute limit, plain SQS producers/consumers.
// Every test accounts for each message by id.

import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { ReceiveMessageCommand, SendMessageCommand, GetQueueUrlCommand } from '@aws-sdk/client-sqs';
import { BrokerError, type BrokerAdapter, type Disposition, type Message, type Received } from '../../../adapters/broker.ts';
import { encode } from '../../../adapters/sqs/codec.ts';
import { Tally } from '../../support/tally.ts';
import { sleep, waitFor } from '../../support/wait.ts';
import { sqsAdapter } from './adapter.ts';
import { startEmulator, type Emulator } from './fauxqs.ts';

const msg = (over: Partial<Message> = {}): Message => ({
  id: randomUUID(),
  payload: Buffer.from(JSON.stringify({ n: Math.random() })),
  headers: { 'x-schema-version': '1' },
  ...over,
});

const isCode = (code: string) => (err: unknown): boolean => {
  assert.ok(err instanceof BrokerError, `expected BrokerError, got ${String(err)}`);
  assert.equal(err.code, code, err.message);
  return true;
};

describe('sqs adapter behaviour', () => {
  let emu: Emulator;
  const opened: BrokerAdapter[] = [];
  const open = async (env: Record<string, string> = {}): Promise<BrokerAdapter> => {
    // 5 s long polls so that close() (which lets polls under way answer) stays quick.
    const b = sqsAdapter(env, { waitTimeSeconds: 5 });
    opened.push(b);
    await b.connect();
    return b;
  };

  /** The last deletes may land a moment after the handler returned. */
  const assertEmpty = async (q: string): Promise<void> => {
    const empty = { visible: 0, inflight: 0, delayed: 0 };
    await waitFor(`${q} to be empty`, async () => JSON.stringify(await emu.counts(q)) === JSON.stringify(empty), 5_000, 50).catch(() => {});
    assert.deepEqual(await emu.counts(q), empty);
  };

  before(async () => {
    emu = await startEmulator();
  });
  after(async () => {
    for (const b of opened) await b.close().catch(() => {});
    await emu.stop();
  });

  test('long work: a job longer than the visibility timeout is handled once, with another consumer waiting', async () => {
    const q = emu.name('long');
    await emu.createQueue(q, { VisibilityTimeout: '2' });
    const a = await open();
    const b = await open();
    const sent = msg();
    await a.publish(q, sent);
    const tally = new Tally();
    const work = async (who: string, m: Received): Promise<Disposition> => {
      tally.record(who, m.id);
      await sleep(7_000); // 3.5 × the queue's VisibilityTimeout
      tally.record('done', m.id);
      return { kind: 'ack' };
    };
    const subA = await a.consume(q, (m) => work('a', m), { prefetch: 1 });
    await waitFor('first consumer to take it', () => tally.count('a') + tally.count('b') === 1, 10_000);
    // A second consumer polls the whole time the first one works.
    const subB = await b.consume(q, (m) => work('b', m), { prefetch: 1 });
    await waitFor('the job to finish', () => tally.count('done') === 1, 15_000);
    await sleep(2_500); // longer than the visibility timeout: a lapsed copy would show up now
    await subA.stop();
    await subB.stop();
    assert.equal(tally.count('a') + tally.count('b'), 1, `handled ${JSON.stringify(tally.placesOf(sent.id))}`);
    await assertEmpty(q);
  });

  test('FIFO: order kept within each group, one message in flight per group, ids and keys carried', async () => {
    const q = emu.name('order') + '.fifo';
    await emu.createQueue(q);
    const a = await open();
    const groups = ['alice', 'bob', 'carol'];
    const sent = new Map<string, string[]>(groups.map((g) => [g, []]));
    for (let i = 0; i < 10; i++) {
      for (const g of groups) {
        const m = msg({ key: g, headers: { 'x-seq': String(i) } });
        sent.get(g)?.push(m.id);
        await a.publish(q, m);
      }
    }
    const handled = new Map<string, string[]>(groups.map((g) => [g, []]));
    const active = new Map<string, number>();
    let overlap = 0;
    let released = false;
    const tally = new Tally();
    const sub = await a.consume(q, async (m): Promise<Disposition> => {
      const g = m.key ?? '?';
      active.set(g, (active.get(g) ?? 0) + 1);
      if ((active.get(g) ?? 0) > 1) overlap++;
      await sleep(5 + Math.random() * 20);
      active.set(g, (active.get(g) ?? 0) - 1);
      tally.record('seen', m.id);
      // Release bob's 4th message once: what follows it must not overtake it.
      if (g === 'bob' && m.headers['x-seq'] === '3' && !released) {
        released = true;
        return { kind: 'release' };
      }
      handled.get(g)?.push(m.id);
      return { kind: 'ack' };
    }, { prefetch: 8 });
    await waitFor('30 acked', () => [...handled.values()].reduce((n, l) => n + l.length, 0) === 30, 20_000);
    await sleep(500);
    await sub.stop();
    assert.equal(overlap, 0, 'two messages of one group were in flight at once');
    for (const g of groups) assert.deepEqual(handled.get(g), sent.get(g), `order of group ${g}`);
    assert.ok(released);
    await assertEmpty(q);
  });

  test('FIFO: a publish retried with the same message id lands once (deduplication id = message id)', async () => {
    const q = emu.name('dedup') + '.fifo';
    await emu.createQueue(q);
    const a = await open();
    const m = msg({ key: 'k1' });
    await a.publish(q, m);
    await a.publish(q, m);
    const other = msg({ key: 'k1' });
    await a.publish(q, other);
    const got = await emu.drain(q);
    assert.deepEqual(got.map((r) => r.id), [m.id, other.id]);
  });

  test('FIFO: deferral goes to the back of its group and comes back after the delay with its new headers', async () => {
    const q = emu.name('fdefer') + '.fifo';
    await emu.createQueue(q);
    const a = await open();
    const first = msg({ key: 'g' });
    const second = msg({ key: 'g' });
    await a.publish(q, first);
    await a.publish(q, second);
    const seen: { id: string; at: number; deferrals: string | undefined }[] = [];
    let deferredAt = 0;
    const sub = await a.consume(q, async (m): Promise<Disposition> => {
      seen.push({ id: m.id, at: Date.now(), deferrals: m.headers['x-turnout-deferrals'] });
      if (m.id === first.id && m.headers['x-turnout-deferrals'] === undefined) {
        deferredAt = Date.now();
        return { kind: 'defer', delayMs: 2000, headers: { ...m.headers, 'x-turnout-deferrals': '1' } };
      }
      return { kind: 'ack' };
    }, { prefetch: 4 });
    await waitFor('three handlings', () => seen.length >= 3, 15_000);
    await sleep(500);
    await sub.stop();
    assert.deepEqual(seen.map((s) => s.id), [first.id, second.id, first.id]);
    const back = seen[2] as { at: number; deferrals: string | undefined };
    assert.equal(back.deferrals, '1');
    assert.ok(back.at - deferredAt >= 2000 - 1000, `came back after ${back.at - deferredAt} ms`);
    await assertEmpty(q);
  });

  test("queue's own RedrivePolicy: a rejected message reaches the redrive DLQ, the app sees it once", async () => {
    const dlq = emu.name('redrive-dlq');
    const q = emu.name('redrive');
    await emu.createQueueWithRedrive(q, dlq, 3);
    const a = await open();
    const bad = msg();
    const good = msg();
    await a.publish(q, bad);
    await a.publish(q, good);
    const tally = new Tally();
    const sub = await a.consume(q, async (m): Promise<Disposition> => {
      tally.record('app', m.id);
      return m.id === bad.id ? { kind: 'reject', reason: 'rejected' } : { kind: 'ack' };
    }, { prefetch: 4 });
    let inDlq: Received[] = [];
    await waitFor('the redrive DLQ to hold it', async () => (await emu.counts(dlq)).visible === 1, 15_000);
    await sub.stop();
    inDlq = await emu.drain(dlq);
    assert.deepEqual(inDlq.map((r) => r.id), [bad.id]);
    assert.deepEqual(inDlq[0]?.payload, bad.payload, 'the original message, untouched');
    assert.deepEqual(tally.placesOf(bad.id), { app: 1 }, 'copies coming back for the redrive count did not reach the app');
    assert.deepEqual(tally.placesOf(good.id), { app: 1 });
    await assertEmpty(q);
  });

  test('deferrals do not use up RedrivePolicy.maxReceiveCount', async () => {
    const dlq = emu.name('mrc-dlq');
    const q = emu.name('mrc');
    await emu.createQueueWithRedrive(q, dlq, 2);
    const a = await open();
    const m0 = msg();
    await a.publish(q, m0);
    const seen: Received[] = [];
    const sub = await a.consume(q, async (m): Promise<Disposition> => {
      seen.push(m);
      const n = Number(m.headers['x-turnout-deferrals'] ?? '0');
      if (n < 5) return { kind: 'defer', delayMs: 0, headers: { ...m.headers, 'x-turnout-deferrals': String(n + 1) } };
      return { kind: 'ack' };
    }, { prefetch: 1 });
    await waitFor('six handlings', () => seen.length >= 6, 15_000);
    await sleep(500);
    await sub.stop();
    assert.equal(seen.length, 6, 'five deferrals then the ack');
    assert.ok(seen.every((r) => r.id === m0.id));
    assert.deepEqual(seen.map((r) => r.headers['x-turnout-deferrals']), [undefined, '1', '2', '3', '4', '5']);
    assert.deepEqual(await emu.drain(dlq), [], 'nothing went to the redrive DLQ (maxReceiveCount 2 < 6 handlings)');
    await assertEmpty(q);
  });

  test('a deferral longer than SQS allows (15 min) is carried as a not-before time and not handed out early', async () => {
    const q = emu.name('longdefer');
    await emu.createQueue(q);
    const a = await open();
    const m0 = msg();
    await a.publish(q, m0);
    const seen: Received[] = [];
    const sub = await a.consume(q, async (m): Promise<Disposition> => {
      seen.push(m);
      return { kind: 'defer', delayMs: 3_600_000, headers: { ...m.headers, 'x-turnout-deferrals': '1' } };
    }, { prefetch: 1 });
    await waitFor('first handling', () => seen.length === 1, 10_000);
    await waitFor('the copy to be waiting (delayed 900 s)', async () => (await emu.counts(q)).delayed === 1, 5_000);
    await sub.stop();
    assert.equal(seen.length, 1);
    assert.deepEqual(await emu.counts(q), { visible: 0, inflight: 0, delayed: 1 });
  });

  test('headers: at most 9 travel as attributes; more, or names SQS refuses, are refused at publish', async () => {
    const q = emu.name('attrs');
    await emu.createQueue(q);
    const a = await open();
    const nine: Record<string, string> = {};
    for (let i = 0; i < 9; i++) nine[`x-h${i}`] = `v${i}`;
    const ok = msg({ headers: { ...nine, 'x-turnout-deferrals': '2', 'x-blank': '' } });
    await a.publish(q, ok);
    await assert.rejects(a.publish(q, msg({ headers: { ...nine, 'x-h9': 'v9' } })), (err: unknown) => {
      isCode('invalid')(err);
      assert.match((err as Error).message, /at most 9 headers/);
      assert.match((err as Error).message, /"x-h9"/);
      return true;
    });
    await assert.rejects(a.publish(q, msg({ headers: { 'AWS.trace': '1' } })), isCode('invalid'));
    await assert.rejects(a.publish(q, msg({ headers: { 'x trace': '1' } })), isCode('invalid'));
    // A dead-letter copy must never be refused: extra headers ride inside x-turnout.
    const dead = msg({ headers: { ...nine, 'x-h9': 'v9', 'AWS.odd': 'y', 'x-turnout-dlq-reason': 'rejected' } });
    await a.publish(q, dead);
    const got = await emu.drain(q);
    assert.deepEqual(got.map((r) => r.id).sort(), [ok.id, dead.id].sort(), 'only the two accepted ones are on the queue');
    const okBack = got.find((r) => r.id === ok.id) as Received;
    assert.deepEqual(okBack.headers, ok.headers);
    const deadBack = got.find((r) => r.id === dead.id) as Received;
    assert.deepEqual(deadBack.headers, Object.fromEntries(Object.entries(dead.headers).map(([k, v]) => [k.toLowerCase(), v])));
  });

  test('too large for the queue is refused with too-large', async () => {
    const q = emu.name('big');
    await emu.createQueue(q, { MaximumMessageSize: '2048' });
    const a = await open();
    await assert.rejects(a.publish(q, msg({ payload: Buffer.alloc(4096, 0x61) })), isCode('too-large'));
    await a.publish(q, msg({ payload: Buffer.alloc(1000, 0x61) }));
    assert.equal((await emu.drain(q)).length, 1);
  });

  test('a deferred copy too large for the queue: the message comes back once, carrying the refusal, instead of being deferred in circles', async () => {
    // The copy carries one more attribute (the deferral count) than the message SQS took at its queue's limit.
    const q = emu.name('refdefer');
    await emu.createQueue(q, { MaximumMessageSize: '2048' });
    const a = await open();
    const probe = msg({ payload: Buffer.alloc(1000, 0x61) });
    const fill = 1000 + 2048 - encode(probe, { spill: false }).size;
    const m0 = msg({ payload: Buffer.alloc(fill, 0x61) });
    assert.equal(encode(m0, { spill: false }).size, 2048, 'the message is exactly at the queue\'s limit');
    await a.publish(q, m0);
    const seen: Received[] = [];
    const sub = await a.consume(q, async (m): Promise<Disposition> => {
      seen.push(m);
      if (m.deferRefused !== undefined) return { kind: 'ack' };
      return { kind: 'defer', delayMs: 1000, headers: { ...m.headers, 'x-turnout-deferrals': '1' } };
    }, { prefetch: 1 });
    await waitFor('two handlings', () => seen.length >= 2, 15_000);
    await sleep(1500);
    await sub.stop();
    assert.equal(seen.length, 2, 'handled twice: the refused deferral, then the copy carrying the refusal');
    assert.ok(seen.every((r) => r.id === m0.id));
    assert.equal(seen[0]?.deferRefused, undefined);
    assert.match(seen[1]?.deferRefused ?? '', /shorter than 2048 bytes|too large/i);
    assert.equal(seen[1]?.headers['x-turnout-deferrals'], undefined, 'the message as it was: no copy was made');
    await assertEmpty(q);
  });

  test('plain SQS on both sides: attributes as headers, turnout metadata in one x-turnout attribute', async () => {
    const q = emu.name('plain');
    const url = await emu.createQueue(q);
    const a = await open();
    // A producer that knows nothing of turnout.
    const sentId = (await emu.client.send(new SendMessageCommand({
      QueueUrl: url,
      MessageBody: '{"hello":"world"}',
      MessageAttributes: { 'X-Schema-Version': { DataType: 'String', StringValue: '2' }, count: { DataType: 'Number', StringValue: '7' } },
    }))).MessageId;
    const got: Received[] = [];
    const sub = await a.consume(q, async (m) => {
      got.push(m);
      return { kind: 'ack' };
    }, { prefetch: 1 });
    await waitFor('the plain message', () => got.length === 1, 10_000);
    await sub.stop();
    const r = got[0] as Received;
    assert.equal(r.id, sentId, 'id is the SQS MessageId');
    assert.equal(r.payload.toString(), '{"hello":"world"}');
    assert.deepEqual(r.headers, { 'x-schema-version': '2', count: '7' });
    // A consumer that knows nothing of turnout reads what turnout published.
    await a.publish(q, msg({ payload: Buffer.from('text body'), headers: { 'x-schema-version': '3' }, key: 'k' }));
    const out = await emu.client.send(new ReceiveMessageCommand({ QueueUrl: url, MessageAttributeNames: ['All'], WaitTimeSeconds: 1 }));
    const plain = out.Messages?.[0];
    assert.equal(plain?.Body, 'text body');
    assert.deepEqual(Object.keys(plain?.MessageAttributes ?? {}).sort(), ['x-schema-version', 'x-turnout']);
    assert.equal(plain?.MessageAttributes?.['x-schema-version']?.StringValue, '3');
  });

  test('queues named by URL work like names', async () => {
    const q = emu.name('byurl');
    const url = await emu.createQueue(q);
    const a = await open();
    const m = msg();
    await a.publish(url, m);
    assert.equal((await a.depth(url)).depth, 1);
    const got: Received[] = [];
    const sub = await a.consume(url, async (r) => {
      got.push(r);
      return { kind: 'ack' };
    }, { prefetch: 1 });
    await waitFor('the message', () => got.length === 1, 10_000);
    await sub.stop();
    assert.equal(got[0]?.id, m.id);
    assert.equal(got[0]?.source, url);
    void GetQueueUrlCommand;
  });

  test('start-up: a missing configured queue is unknown-queue naming the variable', async () => {
    const q = emu.name('exists');
    await emu.createQueue(q);
    const b = sqsAdapter({ TURNOUT_SOURCE: q, TURNOUT_APP_URL: 'http://127.0.0.1:1/', TURNOUT_DLQ: 'no-such-dlq-' + randomUUID() });
    opened.push(b);
    await assert.rejects(b.connect(), (err: unknown) => {
      isCode('unknown-queue')(err);
      assert.match((err as Error).message, /TURNOUT_DLQ/);
      return true;
    });
  });

  test('start-up: no credentials anywhere is forbidden', async () => {
    const saved = { ...process.env };
    for (const k of ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN', 'AWS_PROFILE', 'AWS_WEB_IDENTITY_TOKEN_FILE', 'AWS_CONTAINER_CREDENTIALS_RELATIVE_URI', 'AWS_CONTAINER_CREDENTIALS_FULL_URI']) delete process.env[k];
    process.env.AWS_SHARED_CREDENTIALS_FILE = '/nonexistent/credentials';
    process.env.AWS_CONFIG_FILE = '/nonexistent/config';
    process.env.AWS_EC2_METADATA_DISABLED = 'true';
    try {
      const b = sqsAdapter();
      opened.push(b);
      await assert.rejects(b.connect(), (err: unknown) => {
        isCode('forbidden')(err);
        assert.match((err as Error).message, /credentials/i);
        return true;
      });
    } finally {
      for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
      Object.assign(process.env, saved);
    }
  });
});
