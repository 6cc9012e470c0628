// The adapter conformance suite. Every broker adapter registers it from its
// own test file:
//
//   conformance({ name: 'amqp', create, newQueue, ... });
//
// Each test accounts for every message it publishes: consumed how often,
// with which fields, and what is left on the broker. What a case expects of
// a broker follows from the capabilities its adapter declares
// (adapters/<broker>/capabilities.ts), never from its kind.

import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { BrokerError, type BrokerAdapter, type Capabilities, type Disposition, type Handler, type Message, type Received } from '../../adapters/broker.ts';
import { Tally } from '../support/tally.ts';
import { sleep, waitFor } from '../support/wait.ts';

export interface ConformanceTarget {
  name: string;
  /** A new, connected adapter. */
  create(): Promise<BrokerAdapter>;
  /** A new, empty queue/topic that exists on the broker. */
  newQueue(): Promise<string>;
  /** A name that certainly does not exist on the broker. */
  missingQueue(): string;
  /** How long to watch for something that must NOT happen (e.g. a redelivery after ack). */
  quietMs?: number;
  /** Upper bound for things that must happen. */
  timeoutMs?: number;
  /** What the adapter declares; which cases apply (durable, nativeDeadLetter) follows from it. */
  capabilities: Capabilities;
  /**
   * Required where `capabilities.nativeDeadLetter`: a new queue with the
   * broker's own dead-letter mechanism set up (AMQP dead-letter exchange, SQS
   * RedrivePolicy), and a way to take the ids that reached its dead-letter queue.
   */
  deadLetteredQueue?(): Promise<{ queue: string; takeDeadLetters(): Promise<string[]> }>;
  /**
   * A new, connected adapter whose connection to the broker the test can
   * drop: from the client side or through a loopback proxy the target owns
   * (never by restarting the shared broker). The suite closes the adapter.
   */
  droppable(): Promise<{ adapter: BrokerAdapter; drop(): Promise<void> }>;
  /**
   * How long a message handed out on the dropped connection may stay away
   * before the broker hands it out again (default 0: at once, when the
   * broker sees the connection close). SQS: the queue's visibility timeout,
   * since a long poll under way on the cut connection can still take messages
   * it will never deliver; SQS learns of the closed connection only when it answers.
   */
  lostDeliveryHiddenMs?: number;
  teardown?(): Promise<void>;
}

const msg = (over: Partial<Message> = {}): Message => ({
  id: randomUUID(),
  payload: Buffer.from(JSON.stringify({ n: Math.random() })),
  headers: { 'x-schema-version': '2' },
  ...over,
});

export function conformance(t: ConformanceTarget): void {
  const quiet = t.quietMs ?? 300;
  const timeout = t.timeoutMs ?? 15_000;

  describe(`conformance: ${t.name}`, () => {
    let a: BrokerAdapter;
    const opened: BrokerAdapter[] = [];
    const open = async (): Promise<BrokerAdapter> => {
      const x = await t.create();
      opened.push(x);
      return x;
    };

    before(async () => {
      a = await open();
    });
    after(async () => {
      for (const x of opened) await x.close().catch(() => {});
      await t.teardown?.();
    });

    test('is up after connect', () => {
      assert.equal(a.isUp(), true);
    });

    test('round trip keeps id, bytes, headers, key and content type; ack removes it', async () => {
      const q = await t.newQueue();
      const payload = Buffer.from([0x00, 0xff, 0x7b, 0x22, 0xc3, 0x28, 0x0a]); // not valid UTF-8 on purpose
      const sent = msg({
        payload,
        key: 'customer-42',
        contentType: 'application/octet-stream',
        headers: { 'x-schema-version': '3', 'x-trace-id': 'abc-123', 'x-empty': '' },
      });
      await a.publish(q, sent);
      const got: Received[] = [];
      const sub = await a.consume(q, async (m) => {
        got.push(m);
        return { kind: 'ack' };
      }, { prefetch: 4, group: `conf-${q}` });
      await waitFor('the message', () => got.length >= 1, timeout);
      await sleep(quiet);
      await sub.stop();
      assert.equal(got.length, 1, 'delivered exactly once');
      const m = got[0] as Received;
      assert.equal(m.id, sent.id);
      assert.deepEqual([...m.payload], [...payload]);
      assert.equal(m.headers['x-schema-version'], '3');
      assert.equal(m.headers['x-trace-id'], 'abc-123');
      assert.equal(m.headers['x-empty'], '');
      assert.equal(m.key, 'customer-42');
      assert.equal(m.contentType, 'application/octet-stream');
      assert.equal(m.source, q);
      assert.equal(m.redelivered, false);
      await waitFor('depth 0 after ack', async () => (await a.depth(q)).depth === 0, timeout);
    });

    test('depth counts waiting messages', async () => {
      const q = await t.newQueue();
      for (let i = 0; i < 5; i++) await a.publish(q, msg());
      await waitFor('depth 5', async () => (await a.depth(q)).depth === 5, timeout);
      const d = await a.depth(q);
      assert.equal(d.queue, q);
      assert.equal(d.inflight, 0);
      // account for them: consume all five once
      const tally = new Tally();
      const sub = await a.consume(q, async (m) => {
        tally.record('consumed', m.id);
        return { kind: 'ack' };
      }, { prefetch: 5, group: `conf-${q}` });
      await waitFor('five consumed', () => tally.count('consumed') === 5, timeout);
      await sleep(quiet);
      await sub.stop();
      assert.equal(tally.count('consumed'), 5);
      assert.deepEqual(tally.duplicates(), []);
      await waitFor('depth 0', async () => (await a.depth(q)).depth === 0, timeout);
    });

    test('release hands the same message out again, marked redelivered', async () => {
      const q = await t.newQueue();
      const sent = msg();
      await a.publish(q, sent);
      const seen: Received[] = [];
      const sub = await a.consume(q, async (m) => {
        seen.push(m);
        return seen.length === 1 ? { kind: 'release' } : { kind: 'ack' };
      }, { prefetch: 1, group: `conf-${q}` });
      await waitFor('second delivery', () => seen.length >= 2, timeout);
      await sleep(quiet);
      await sub.stop();
      assert.equal(seen.length, 2, 'released once, then acked once');
      assert.equal(seen[1]?.id, sent.id);
      assert.deepEqual(seen[1]?.payload, sent.payload);
      assert.equal(seen[1]?.redelivered, true);
    });

    test('defer brings the message back after the delay with the new headers', async () => {
      const q = await t.newQueue();
      const sent = msg();
      await a.publish(q, sent);
      const seen: { m: Received; at: number }[] = [];
      const delayMs = 1500;
      let deferredAt = 0;
      const sub = await a.consume(q, async (m): Promise<Disposition> => {
        seen.push({ m, at: Date.now() });
        if (seen.length === 1) {
          deferredAt = Date.now();
          return { kind: 'defer', delayMs, headers: { ...m.headers, 'x-turnout-deferrals': '1' } };
        }
        return { kind: 'ack' };
      }, { prefetch: 2, group: `conf-${q}` });
      await waitFor('deferred copy', () => seen.length >= 2, timeout + delayMs);
      await sleep(quiet);
      await sub.stop();
      assert.equal(seen.length, 2, 'seen once, deferred, seen once more');
      const back = seen[1] as { m: Received; at: number };
      assert.equal(back.m.id, sent.id);
      assert.deepEqual(back.m.payload, sent.payload);
      assert.equal(back.m.headers['x-turnout-deferrals'], '1');
      assert.equal(back.m.headers['x-schema-version'], '2');
      // Brokers round delays (SQS to whole seconds); never early by more than that.
      assert.ok(back.at - deferredAt >= delayMs - 1000, `came back after ${back.at - deferredAt} ms, asked for ${delayMs}`);
    });

    test('prefetch bounds the messages in flight; every message is handled once', async () => {
      const q = await t.newQueue();
      const ids: string[] = [];
      for (let i = 0; i < 12; i++) {
        const m = msg({ key: `k${i % 3}` });
        ids.push(m.id);
        await a.publish(q, m);
      }
      const tally = new Tally();
      let active = 0;
      let peak = 0;
      const sub = await a.consume(q, async (m) => {
        active++;
        peak = Math.max(peak, active);
        await sleep(50);
        active--;
        tally.record('handled', m.id);
        return { kind: 'ack' };
      }, { prefetch: 3, group: `conf-${q}` });
      await waitFor('twelve handled', () => tally.count('handled') === 12, timeout);
      await sleep(quiet);
      await sub.stop();
      assert.ok(peak <= 3, `peak in flight ${peak} exceeds prefetch 3`);
      assert.ok(peak >= 1);
      assert.deepEqual(tally.missing(ids), []);
      assert.deepEqual(tally.duplicates(), []);
    });

    test('200 messages: each consumed exactly once, none left', async () => {
      const q = await t.newQueue();
      const ids = new Set<string>();
      await Promise.all(
        Array.from({ length: 200 }, async (_, i) => {
          const m = msg({ key: `key-${i % 7}` });
          ids.add(m.id);
          await a.publish(q, m);
        }),
      );
      const tally = new Tally();
      const sub = await a.consume(q, async (m) => {
        tally.record('consumed', m.id);
        return { kind: 'ack' };
      }, { prefetch: 16, group: `conf-${q}` });
      await waitFor('200 consumed', () => tally.ids('consumed').size === 200, timeout * 2);
      await sleep(quiet);
      await sub.stop();
      assert.deepEqual(tally.missing(ids), []);
      assert.equal(tally.count('consumed'), 200, `duplicates: ${tally.duplicates().length}`);
      await waitFor('depth 0', async () => (await a.depth(q)).depth === 0, timeout);
    });

    test('after stop no new message is taken; the rest stays for the next consumer', async () => {
      const q = await t.newQueue();
      const ids: string[] = [];
      for (let i = 0; i < 6; i++) {
        const m = msg();
        ids.push(m.id);
        await a.publish(q, m);
      }
      const tally = new Tally();
      let release!: () => void;
      const gate = new Promise<void>((r) => (release = r));
      const sub = await a.consume(q, async (m) => {
        tally.record('first', m.id);
        await gate;
        return { kind: 'ack' };
      }, { prefetch: 2, group: `conf-${q}` });
      await waitFor('two in flight', () => tally.count('first') === 2, timeout);
      await sub.stop();
      release();
      await sleep(quiet);
      assert.equal(tally.count('first'), 2, 'nothing taken after stop');
      const sub2 = await a.consume(q, async (m) => {
        tally.record('second', m.id);
        return { kind: 'ack' };
      }, { prefetch: 2, group: `conf-${q}` });
      await waitFor('the other four', () => tally.count('second') >= 4, timeout);
      await sleep(quiet);
      await sub2.stop();
      assert.deepEqual(tally.missing(ids), []);
      assert.deepEqual(tally.inSeveralPlaces(), [], 'the two acked during stop were not handed out again');
      assert.equal(tally.count('second'), 4);
    });

    test('publish to a missing queue fails with unknown-queue', async () => {
      await assert.rejects(a.publish(t.missingQueue(), msg()), (err: unknown) => {
        assert.ok(err instanceof BrokerError, `expected BrokerError, got ${String(err)}`);
        assert.equal(err.code, 'unknown-queue');
        return true;
      });
    });

    test('after a publish to a missing queue fails, publishing to an existing queue still works', async () => {
      const q = await t.newQueue();
      await assert.rejects(a.publish(t.missingQueue(), msg()));
      const sent = msg();
      await a.publish(q, sent);
      const tally = new Tally();
      const sub = await a.consume(q, async (m) => {
        tally.record('consumed', m.id);
        return { kind: 'ack' };
      }, { prefetch: 1, group: `conf-${q}` });
      await waitFor('the message', () => tally.count('consumed') === 1, timeout);
      await sleep(quiet);
      await sub.stop();
      assert.deepEqual(tally.placesOf(sent.id), { consumed: 1 });
    });

    test('defer with no delay brings the message back once', async () => {
      const q = await t.newQueue();
      const sent = msg();
      await a.publish(q, sent);
      const seen: Received[] = [];
      const sub = await a.consume(q, async (m): Promise<Disposition> => {
        seen.push(m);
        return seen.length === 1 ? { kind: 'defer', delayMs: 0, headers: { ...m.headers, 'x-turnout-deferrals': '1' } } : { kind: 'ack' };
      }, { prefetch: 1, group: `conf-${q}` });
      await waitFor('back again', () => seen.length >= 2, timeout);
      await sleep(quiet);
      await sub.stop();
      assert.equal(seen.length, 2);
      assert.equal(seen[1]?.id, sent.id);
      assert.equal(seen[1]?.headers['x-turnout-deferrals'], '1');
    });

    if (t.capabilities.durable) {
      test('unsettled messages survive close and come back to another consumer', async () => {
        const q = await t.newQueue();
        const sent = msg();
        const b = await open();
        await b.publish(q, sent);
        const tally = new Tally();
        await b.consume(q, async (m) => {
          tally.record('held', m.id);
          return new Promise<Disposition>(() => {}); // never settles
        }, { prefetch: 1, group: `conf-${q}` });
        await waitFor('held', () => tally.count('held') === 1, timeout);
        await b.close();
        const c = await open();
        const sub = await c.consume(q, async (m) => {
          tally.record('again', m.id);
          return { kind: 'ack' };
        }, { prefetch: 1, group: `conf-${q}` });
        await waitFor('redelivered', () => tally.count('again') === 1, timeout * 2);
        await sleep(quiet);
        await sub.stop();
        assert.deepEqual(tally.placesOf(sent.id), { held: 1, again: 1 });
      });
    }

    test('a handler that throws: the message is released, seen again (redelivered), then acked', async () => {
      const q = await t.newQueue();
      const throwsNow = msg();
      const rejectsLater = msg();
      await a.publish(q, throwsNow);
      await a.publish(q, rejectsLater);
      const tally = new Tally();
      const copies: Received[] = [];
      // Not async: the first copy of one message throws synchronously, of the other by a rejected promise.
      const handler: Handler = (m) => {
        copies.push(m);
        const first = tally.placesOf(m.id).thrown === undefined;
        if (first) {
          tally.record('thrown', m.id);
          if (m.id === throwsNow.id) throw new Error('handler failed synchronously (on purpose)');
          return Promise.reject(new Error('handler failed asynchronously (on purpose)'));
        }
        tally.record('acked', m.id);
        return Promise.resolve({ kind: 'ack' });
      };
      const sub = await a.consume(q, handler, { prefetch: 2, group: `conf-${q}` });
      await waitFor('both acked', () => tally.count('acked') === 2, timeout);
      await sleep(quiet);
      await sub.stop();
      for (const sent of [throwsNow, rejectsLater]) {
        assert.deepEqual(tally.placesOf(sent.id), { thrown: 1, acked: 1 }, 'thrown once, then acked once');
        const seen = copies.filter((m) => m.id === sent.id);
        assert.equal(seen.length, 2);
        assert.equal(seen[0]?.redelivered, false);
        assert.equal(seen[1]?.redelivered, true, 'the released copy comes back marked redelivered');
        assert.deepEqual(seen[1]?.payload, sent.payload);
      }
      await waitFor('depth 0 after ack', async () => (await a.depth(q)).depth === 0, timeout);
    });

    if (t.capabilities.nativeDeadLetter) {
      test("reject hands the message to the broker's own dead-letter mechanism, once", async () => {
        assert.ok(t.deadLetteredQueue, `${t.name} declares nativeDeadLetter: the target must set up a dead-lettered queue`);
        const { queue, takeDeadLetters } = await t.deadLetteredQueue();
        const ids: string[] = [];
        for (let i = 0; i < 3; i++) {
          const m = msg();
          ids.push(m.id);
          await a.publish(queue, m);
        }
        const tally = new Tally();
        const sub = await a.consume(queue, async (m): Promise<Disposition> => {
          tally.record('rejected', m.id);
          return { kind: 'reject', reason: 'conformance' };
        }, { prefetch: 3, group: `conf-${queue}` });
        await waitFor('all three dead-lettered by the broker', async () => {
          for (const id of await takeDeadLetters()) tally.record('broker-dlq', id);
          return tally.count('broker-dlq') >= 3;
        }, timeout * 2);
        await sleep(quiet);
        await sub.stop();
        for (const id of await takeDeadLetters()) tally.record('broker-dlq', id);
        for (const id of ids) assert.deepEqual(tally.placesOf(id), { rejected: 1, 'broker-dlq': 1 }, 'rejected once, in the dead-letter queue once');
        assert.equal(tally.count('broker-dlq'), 3, 'nothing else in the dead-letter queue');
        await waitFor('source depth 0', async () => (await a.depth(queue)).depth === 0, timeout);
      });
    } else {
      test('reject without a dead-letter mechanism of the broker keeps the message: handed out again', async () => {
        const q = await t.newQueue();
        const sent = msg();
        await a.publish(q, sent);
        const copies: Received[] = [];
        const sub = await a.consume(q, async (m): Promise<Disposition> => {
          copies.push(m);
          return copies.length === 1 ? { kind: 'reject', reason: 'conformance' } : { kind: 'ack' };
        }, { prefetch: 1, group: `conf-${q}` });
        await waitFor('seen again', () => copies.length >= 2, timeout);
        await sleep(quiet);
        await sub.stop();
        assert.equal(copies.length, 2, 'rejected once (kept), then acked once');
        assert.equal(copies[1]?.id, sent.id);
        assert.deepEqual(copies[1]?.payload, sent.payload);
        assert.equal(copies[1]?.redelivered, true);
        await waitFor('depth 0 after ack', async () => (await a.depth(q)).depth === 0, timeout);
      });
    }

    test('the connection drops: nothing is lost, consuming resumes', async () => {
      const q = await t.newQueue();
      const { adapter: b, drop } = await t.droppable();
      opened.push(b);
      const before = Array.from({ length: 5 }, () => msg());
      const after = Array.from({ length: 5 }, () => msg());
      for (const m of before) await a.publish(q, m);
      const tally = new Tally();
      const copies: Received[] = [];
      const sub = await b.consume(q, async (m) => {
        copies.push(m);
        tally.record('consumed', m.id);
        return { kind: 'ack' };
      }, { prefetch: 2, group: `conf-${q}` });
      await waitFor('the first five', () => tally.ids('consumed').size === 5, timeout);
      await drop();
      for (const m of after) await a.publish(q, m);
      await waitFor('the five published after the drop', () => after.every((m) => tally.ids('consumed').has(m.id)), timeout * 2 + (t.lostDeliveryHiddenMs ?? 0));
      await sleep(quiet);
      await sub.stop();
      const ids = [...before, ...after].map((m) => m.id);
      assert.deepEqual(tally.missing(ids), [], 'nothing lost');
      assert.equal(tally.ids('consumed').size, 10, 'nothing that was not published');
      // At-least-once: a copy whose ack the drop lost comes again, and then says so.
      // The first copy the handler sees may say so too: the broker may have handed
      // it to the dropped connection before the handler was called (seen on quorum
      // queues), and redelivered means "may have been handed out before".
      for (const id of ids) {
        const seen = copies.filter((m) => m.id === id);
        for (const again of seen.slice(1)) assert.equal(again.redelivered, true, `${id}: a further copy is marked redelivered`);
      }
      // b's group is the one that consumed (Kafka reports lag per group).
      await waitFor('depth 0', async () => (await b.depth(q)).depth === 0, timeout);
      await waitFor('up again after the drop', () => b.isUp(), timeout);
    });

    // A publish under way when close() is called either finishes or was never
    // sent. Failing one the broker had taken makes its caller (an app
    // publishing through a stopping sidecar) send it again: a duplicate.
    // Two moments: one turn after the publishes (written, no answer yet), and
    // at the first answer (the rest are on the wire: SQS batches, confirms).
    const closeMoments: [string, (publishes: Promise<void>[]) => Promise<unknown>][] = [
      ['one turn after them', () => new Promise((resolve) => setImmediate(resolve))],
      ['at the first answer', (publishes) => Promise.race(publishes)],
    ];
    for (const [moment, until] of closeMoments) {
      test(`close() ${moment} with 100 publishes under way: each one resolves and (durable brokers) is on the queue once; publishes after it fail with unavailable`, async () => {
        const b = await open();
        const q = await t.newQueue();
        // The first publish opens what publishing needs (channel, queue lookup), so the next ones go out at once.
        const first = msg();
        await b.publish(q, first);
        const sent = [first, ...Array.from({ length: 100 }, (_, i) => msg({ key: `key-${i % 5}` }))];
        const publishes = sent.slice(1).map((m) => b.publish(q, m));
        await until(publishes);
        const closing = b.close();
        await assert.rejects(b.publish(q, msg()), (err: unknown) => err instanceof BrokerError && err.code === 'unavailable');
        const outcomes = await Promise.allSettled(publishes);
        await closing;
        const failed = outcomes.flatMap((o, i) => (o.status === 'rejected' ? [`${sent[i + 1]?.id}: ${String(o.reason)}`] : []));
        assert.deepEqual(failed, [], 'no publish under way fails because of close()');
        // An embedded broker's messages end with it: only a durable one can be asked afterwards.
        if (!t.capabilities.durable) return;
        const tally = new Tally();
        const sub = await a.consume(q, async (m) => {
          tally.record('consumed', m.id);
          return { kind: 'ack' };
        }, { prefetch: 16, group: `conf-${q}` });
        await waitFor('101 consumed', () => tally.ids('consumed').size >= 101, timeout * 2);
        await sleep(quiet);
        await sub.stop();
        assert.deepEqual(tally.missing(sent.map((m) => m.id)), []);
        assert.equal(tally.count('consumed'), 101, `duplicates: ${tally.duplicates().length}; nothing but the 101`);
      });
    }

    test('after close: not up, publish fails with unavailable', async () => {
      const b = await open();
      const q = await t.newQueue();
      await b.close();
      assert.equal(b.isUp(), false);
      await assert.rejects(b.publish(q, msg()), (err: unknown) => err instanceof BrokerError && err.code === 'unavailable');
    });
  });
}
