// The adapter conformance suite. Every broker adapter registers it from its
// own test file:
//
//   conformance({ name: 'amqp', create, newQueue, ... });
//
// Each test accounts for every message it publishes: consumed how often,
// with which fields, and what is left on the broker.

import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { BrokerError, type BrokerAdapter, type Disposition, type Message, type Received } from '../../adapters/broker.ts';
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
  /** Whether unsettled messages survive the adapter's close (true for real brokers). */
  durable: boolean;
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

    if (t.durable) {
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

    test('after close: not up, publish fails with unavailable', async () => {
      const b = await open();
      const q = await t.newQueue();
      await b.close();
      assert.equal(b.isUp(), false);
      await assert.rejects(b.publish(q, msg()), (err: unknown) => err instanceof BrokerError && err.code === 'unavailable');
    });
  });
}
