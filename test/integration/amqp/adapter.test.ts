// RabbitMQ-specific behaviour of the adapter, beyond the conformance suite:
// native dead-lettering, header mapping from other producers, the delay
// queue, returns of unroutable publishes, depth with unacked counts, a lost
// connection and a deleted source. Every message is accounted for by id.

import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import * as amqp from 'amqplib';
import { AmqpBroker } from '../../../adapters/amqp/index.ts';
import { delayQueueName } from '../../../adapters/amqp/delay.ts';
import { BrokerError, type Disposition, type Message, type Received } from '../../../adapters/broker.ts';
import { Tally } from '../../support/tally.ts';
import { sleep, waitFor } from '../../support/wait.ts';
import { rabbitShared } from './lock.ts';
import { AMQP_URL, TestRabbit, connectedBroker, testLogger } from './rabbit.ts';
import { closeConnectionsNamed } from './rabbitmqctl.ts';

const msg = (over: Partial<Message> = {}): Message => ({
  id: randomUUID(),
  payload: Buffer.from(JSON.stringify({ n: Math.random() })),
  headers: { 'x-schema-version': '1' },
  ...over,
});

describe('amqp adapter on RabbitMQ', () => {
  const rabbit = new TestRabbit('adapter');
  const brokers: AmqpBroker[] = [];
  let release: () => void = () => {};
  let a: AmqpBroker;
  const open = async (over: Parameters<typeof connectedBroker>[0] = {}): Promise<AmqpBroker> => {
    const b = await connectedBroker(over);
    brokers.push(b);
    return b;
  };

  before(async () => {
    release = await rabbitShared();
    a = await open();
  });
  after(async () => {
    for (const b of brokers) await b.close();
    await rabbit.teardown();
    release();
  });

  test("reject without requeue hands the message to the queue's own dead-letter exchange", async () => {
    const dlq = await rabbit.queue('classic', 'native-dlq');
    const q = await rabbit.queue('quorum', 'src', { 'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': dlq });
    assert.equal(a.capabilities.nativeDeadLetter, true);
    const ids = Array.from({ length: 5 }, () => randomUUID());
    for (const id of ids) await a.publish(q, msg({ id }));
    const tally = new Tally();
    const sub = await a.consume(q, async (m) => {
      tally.record('rejected', m.id);
      return { kind: 'reject', reason: 'rejected' };
    }, { prefetch: 5 });
    await waitFor('five rejected', () => tally.count('rejected') === 5);
    await sub.stop();
    await waitFor('five in the native DLQ', async () => (await rabbit.ready(dlq)) === 5);
    for (const m of await rabbit.drain(dlq)) tally.record('dlq', String(m.properties.messageId));
    assert.deepEqual(tally.missing(ids), []);
    for (const id of ids) assert.deepEqual(tally.placesOf(id), { rejected: 1, dlq: 1 });
    assert.equal(await rabbit.ready(q), 0);
  });

  test('headers from other producers arrive as strings; key, content type and id are mapped; a message without id gets one', async () => {
    const q = await rabbit.queue('classic');
    await rabbit.withChannel(async (ch) => {
      ch.sendToQueue(q, Buffer.from('plain'), {
        contentType: 'text/plain',
        headers: { 'x-schema-version': 2, 'x-flag': true, 'x-bytes': Buffer.from('héllo'), 'x-str': 's', 'x-turnout-key': 'k-1', 'x-table': { a: 1 } },
      });
      ch.sendToQueue(q, Buffer.from('with id'), { messageId: 'given-id', headers: {} });
    });
    const got: Received[] = [];
    const sub = await a.consume(q, async (m) => {
      got.push(m);
      return { kind: 'ack' };
    }, { prefetch: 2 });
    await waitFor('both', () => got.length === 2);
    await sub.stop();
    const [first, second] = got as [Received, Received];
    assert.deepEqual(first.headers, { 'x-schema-version': '2', 'x-flag': 'true', 'x-bytes': 'héllo', 'x-str': 's', 'x-table': '{"a":1}' });
    assert.equal(first.key, 'k-1');
    assert.equal(first.contentType, 'text/plain');
    assert.match(first.id, /^[0-9a-f-]{36}$/);
    assert.equal(second.id, 'given-id');
    assert.equal(second.key, undefined);
  });

  test("deferred messages wait in turnout's delay queue (counted in depth), come back once, without RabbitMQ's death headers", async () => {
    const q = await rabbit.queue('quorum');
    const sent = msg({ key: 'deferred-key', contentType: 'application/json' });
    await a.publish(q, sent);
    const seen: Received[] = [];
    const sub = await a.consume(q, async (m): Promise<Disposition> => {
      seen.push(m);
      return seen.length === 1 ? { kind: 'defer', delayMs: 2000, headers: { ...m.headers, 'x-turnout-deferrals': '1' } } : { kind: 'ack' };
    }, { prefetch: 4 });
    await waitFor('first sight', () => seen.length === 1);
    await waitFor('waiting in the delay queue', async () => (await rabbit.ready(delayQueueName(q))) === 1);
    assert.equal(await rabbit.ready(q), 0);
    const d = await a.depth(q);
    assert.equal(d.depth, 1, 'depth counts the deferred message');
    await sleep(1000);
    assert.equal(seen.length, 1, 'not seen again before the delay: no hot loop');
    await waitFor('back after the delay', () => seen.length === 2, 10_000);
    await sleep(300);
    await sub.stop();
    assert.equal(seen.length, 2);
    const back = seen[1] as Received;
    assert.equal(back.id, sent.id);
    assert.equal(back.key, 'deferred-key');
    assert.equal(back.contentType, 'application/json');
    assert.equal(back.headers['x-turnout-deferrals'], '1');
    assert.equal(back.headers['x-death'], undefined);
    assert.equal(back.headers['x-first-death-queue'], undefined);
    assert.deepEqual(back.payload, sent.payload);
    await waitFor('both queues empty', async () => (await a.depth(q)).depth === 0);
  });

  test('twenty deferrals at once from a new source: each message back exactly once', async () => {
    const q = await rabbit.queue('classic');
    const ids: string[] = [];
    for (let i = 0; i < 20; i++) {
      const m = msg();
      ids.push(m.id);
      await a.publish(q, m);
    }
    const tally = new Tally();
    const sub = await a.consume(q, async (m): Promise<Disposition> => {
      if (m.headers['x-turnout-deferrals'] === undefined) {
        tally.record('first', m.id);
        return { kind: 'defer', delayMs: 500, headers: { ...m.headers, 'x-turnout-deferrals': '1' } };
      }
      tally.record('back', m.id);
      return { kind: 'ack' };
    }, { prefetch: 20 });
    await waitFor('all back', () => tally.ids('back').size === 20, 10_000);
    await sleep(700);
    await sub.stop();
    for (const id of ids) assert.deepEqual(tally.placesOf(id), { first: 1, back: 1 });
    assert.equal(await rabbit.ready(delayQueueName(q)), 0);
  });

  test('interleaved publishes: confirmed ones land, unroutable ones fail with unknown-queue', async () => {
    const q = await rabbit.queue('classic');
    const missing = rabbit.name('missing');
    const sent: string[] = [];
    const results = await Promise.allSettled(Array.from({ length: 100 }, (_, i) => {
      const m = msg();
      if (i % 2 === 0) sent.push(m.id);
      return a.publish(i % 2 === 0 ? q : missing, m);
    }));
    results.forEach((r, i) => {
      if (i % 2 === 0) assert.equal(r.status, 'fulfilled', `publish ${i} to the existing queue`);
      else assert.ok(r.status === 'rejected' && r.reason instanceof BrokerError && r.reason.code === 'unknown-queue', `publish ${i} to the missing queue`);
    });
    const tally = new Tally();
    for (const m of await rabbit.drain(q)) tally.record('landed', String(m.properties.messageId));
    assert.deepEqual(tally.missing(sent), []);
    assert.equal(tally.count('landed'), 50);
    assert.deepEqual(tally.duplicates(), []);
  });

  test('publish carries persistence, id, content type and the key header', async () => {
    const q = await rabbit.queue('classic');
    const m = msg({ key: 'kk', contentType: 'application/json', headers: { 'x-schema-version': '3', 'x-death': 'not carried' } });
    await a.publish(q, m);
    const [got] = await rabbit.drain(q);
    assert.ok(got);
    assert.equal(got.properties.deliveryMode, 2);
    assert.equal(got.properties.messageId, m.id);
    assert.equal(got.properties.contentType, 'application/json');
    assert.deepEqual(got.properties.headers, { 'x-schema-version': '3', 'x-turnout-key': 'kk' });
  });

  test('depth reports messages unacked by another consumer (management API)', async () => {
    const q = await rabbit.queue('classic');
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      const m = msg();
      ids.push(m.id);
      await a.publish(q, m);
    }
    const other = await amqp.connect(AMQP_URL);
    try {
      const ch = await other.createChannel();
      await ch.prefetch(3);
      const held: string[] = [];
      await ch.consume(q, (m) => m && held.push(String(m.properties.messageId)), { noAck: false });
      await waitFor('three held elsewhere', () => held.length === 3);
      // The management plugin samples every 5 s.
      const d = await waitFor('unacked 3 reported', async () => {
        const x = await a.depth(q);
        return x.inflight === 3 ? x : undefined;
      }, 20_000, 500);
      assert.equal(d?.depth, 2);
      await ch.close();
    } finally {
      await other.close();
    }
    const tally = new Tally();
    for (const m of await rabbit.drain(q)) tally.record('left', String(m.properties.messageId));
    assert.deepEqual(tally.missing(ids), [], 'the held ones returned to the queue on close');
  });

  test('without the management API, inflight is what this turnout holds', async () => {
    const b = await open({ url: `${AMQP_URL}?management=off` });
    const q = await rabbit.queue('classic');
    for (let i = 0; i < 3; i++) await b.publish(q, msg());
    let letGo!: () => void;
    const gate = new Promise<void>((r) => (letGo = r));
    const tally = new Tally();
    const sub = await b.consume(q, async (m) => {
      tally.record('held', m.id);
      await gate;
      return { kind: 'ack' };
    }, { prefetch: 2 });
    await waitFor('two held', () => tally.count('held') === 2);
    assert.deepEqual(await b.depth(q), { queue: q, depth: 1, inflight: 2 });
    letGo();
    await waitFor('third', () => tally.count('held') === 3);
    await sub.stop();
    await waitFor('nothing held', async () => (await b.depth(q)).inflight === 0);
    assert.deepEqual(tally.duplicates(), []);
  });

  test('a missing source is unknown-queue, naming the queue', async () => {
    const missing = rabbit.name('missing-source');
    await assert.rejects(a.consume(missing, async () => ({ kind: 'ack' }), { prefetch: 1 }), (err: unknown) => {
      assert.ok(err instanceof BrokerError);
      assert.equal(err.code, 'unknown-queue');
      assert.match(err.message, new RegExp(missing.replace(/\./g, '\\.')));
      return true;
    });
    await assert.rejects(a.depth(missing), (err: unknown) => err instanceof BrokerError && err.code === 'unknown-queue');
    assert.equal(a.isUp(), true, 'a failed passive check does not hurt the connection');
  });

  // The adapter's two connections are lost together: either one dropped, both are opened again.
  for (const which of ['consuming', 'publishing'] as const) test(`a dropped ${which} connection: not up, publish unavailable, then reconnected; consuming resumes and nothing is lost`, async () => {
    const name = `turnout-test-drop-${randomUUID()}`;
    const dropped = which === 'consuming' ? name : `${name} (publish)`;
    const b = await open({ connectionName: name, reconnectMinMs: 100, reconnectMaxMs: 1000 });
    const q = await rabbit.queue('quorum');
    const tally = new Tally();
    const ids: string[] = [];
    const sub = await b.consume(q, async (m) => {
      tally.record(m.redelivered ? 'redelivered' : 'consumed', m.id);
      await sleep(20);
      return { kind: 'ack' };
    }, { prefetch: 4 });
    // a steady stream published from another connection
    let publishing = true;
    const producer = (async () => {
      while (publishing) {
        const m = msg();
        ids.push(m.id);
        await a.publish(q, m);
        await sleep(5);
      }
    })();
    let sawDown = false;
    const watcher = setInterval(() => {
      if (!b.isUp()) sawDown = true;
    }, 5);
    try {
      await waitFor('some consumed', () => tally.count('consumed') >= 20);
      assert.equal(await closeConnectionsNamed(dropped), 1);
      await waitFor('noticed', () => sawDown, 5000, 5);
      await assert.rejects(b.publish(q, msg()), (err: unknown) => err instanceof BrokerError && err.code === 'unavailable');
      await waitFor('reconnected', () => b.isUp(), 15_000);
      const seen = tally.ids('consumed').size + tally.ids('redelivered').size;
      await waitFor('consuming again', () => tally.ids('consumed').size + tally.ids('redelivered').size > seen + 20, 15_000);
    } finally {
      clearInterval(watcher);
      publishing = false;
      await producer;
    }
    await waitFor('all consumed', () => tally.missing(ids).length === 0, 15_000);
    await sleep(300);
    await sub.stop();
    assert.deepEqual(tally.missing(ids), []);
    const dupes = tally.duplicates();
    // At-least-once: only messages in flight at the drop may come twice.
    assert.ok(dupes.length <= 4, `duplicates ${dupes.length} exceed the prefetch`);
    assert.equal(await rabbit.ready(q), 0);
  });

  test('a deleted and re-created source: the cancelled consumer comes back', async () => {
    const b = await open({ reconnectMinMs: 100, reconnectMaxMs: 500 });
    const q = await rabbit.queue('classic');
    const tally = new Tally();
    const sub = await b.consume(q, async (m) => {
      tally.record('consumed', m.id);
      return { kind: 'ack' };
    }, { prefetch: 2 });
    const first = msg();
    await b.publish(q, first);
    await waitFor('first', () => tally.count('consumed') === 1);
    await rabbit.withChannel((ch) => ch.deleteQueue(q));
    await sleep(300);
    await rabbit.withChannel((ch) => ch.assertQueue(q, { durable: true, arguments: { 'x-queue-type': 'classic' } }));
    const second = msg();
    await b.publish(q, second);
    await waitFor('second after the queue came back', () => tally.count('consumed') === 2, 10_000);
    await sub.stop();
    assert.deepEqual(tally.placesOf(first.id), { consumed: 1 });
    assert.deepEqual(tally.placesOf(second.id), { consumed: 1 });
  });

  test('close() while publishes await their confirms: each one sent is confirmed (resolves) and lands; none fails that RabbitMQ holds', async () => {
    const q = await rabbit.queue('quorum', 'close-confirms');
    const b = await connectedBroker();
    const ids = Array.from({ length: 300 }, () => randomUUID());
    const outcomes = ids.map((id) => b.publish(q, msg({ id })).then(() => 'ok' as const, (err: unknown) => err));
    // Some are on the wire, unconfirmed, when the close starts; the rest find the publisher gone.
    await sleep(1);
    await b.close();
    const results = await Promise.all(outcomes);
    const confirmed = ids.filter((_, i) => results[i] === 'ok');
    for (const r of results) if (r !== 'ok') assert.ok(r instanceof BrokerError && r.code === 'unavailable', String(r));
    await waitFor(`${confirmed.length} on the queue`, async () => (await rabbit.ready(q)) === confirmed.length, 10_000);
    const landed = await rabbit.drain(q);
    assert.deepEqual(landed.map((m) => m.properties.messageId).sort(), [...confirmed].sort(), 'exactly the confirmed ones: a publish told it failed was not enqueued (its retry would be a duplicate)');
  });

  test('close() right after a burst of acks: every ack reaches RabbitMQ before the connection ends (nothing handed out again)', async () => {
    // amqplib writes its channels' frames round-robin: the connection's close frame used to overtake acks still
    // queued on the consumer channel, RabbitMQ discarded them and requeued those messages (after a graceful drain,
    // each would reach its target twice). Seen as a duplicate in the rollout tests when a router was SIGTERMed.
    const q = await rabbit.queue('classic', 'close-acks');
    const b = await connectedBroker();
    const n = 60;
    for (let i = 0; i < n; i++) await b.publish(q, msg());
    let open!: () => void;
    const gate = new Promise<void>((resolve) => (open = resolve));
    let held = 0;
    await b.consume(q, async (): Promise<Disposition> => {
      held++;
      await gate;
      return { kind: 'ack' };
    }, { prefetch: n });
    await waitFor(`all ${n} held`, () => held === n, 10_000);
    // Every handler answers at once; the acks are written in this same turn of the event loop, and close() starts before amqplib flushes them.
    open();
    for (let i = 0; i < 20; i++) await Promise.resolve();
    await b.close();
    // Unacked messages would be ready again as soon as the connection is gone.
    await sleep(300);
    assert.equal(await rabbit.ready(q), 0, 'every acked message stayed acked');
  });

  test('bad credentials are forbidden, an unreachable broker is unavailable', async () => {
    const bad = new AmqpBroker({ url: 'amqp://nobody:wrong@127.0.0.1:5672', logger: testLogger() });
    await assert.rejects(bad.connect(), (err: unknown) => err instanceof BrokerError && err.code === 'forbidden');
    const gone = new AmqpBroker({ url: 'amqp://guest:guest@127.0.0.1:1', logger: testLogger() });
    await assert.rejects(gone.connect(), (err: unknown) => err instanceof BrokerError && err.code === 'unavailable');
    assert.equal(gone.isUp(), false);
  });
});
