// The `turnout move` / `turnout drained` suite every broker runs (like
// test/conformance): runMove and readBacklogs over a real adapter, with each
// message accounted for by id — where it ended up and how often.
//
// What "left on --from" means follows from the adapter's capabilities: a
// broker whose consumers share a source through a group (Kafka) keeps every
// record in its log, so there what a move took is what the move's group has
// passed, and the log itself still holds everything.

import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import type { Backlog, BrokerAdapter, Capabilities, Disposition, Message, Received } from '../../adapters/broker.ts';
import { createLogger } from '../../lib/log.ts';
import { isDrained, readBacklogs } from '../../src/migrate/drained.ts';
import { parseWhere } from '../../src/migrate/filters.ts';
import { exitCodeOf, runMove, TO_SOURCE, type MoveOptions, type MoveSummary } from '../../src/migrate/move.ts';
import { Tally } from '../support/tally.ts';
import { sleep, waitFor } from '../support/wait.ts';

export interface MoveTarget {
  name: string;
  capabilities: Capabilities;
  /** A new, connected adapter. */
  create(): Promise<BrokerAdapter>;
  /** A new, empty queue/topic that exists. */
  newQueue(): Promise<string>;
  /** A queue/topic that certainly does not exist (the broker refuses a copy to it). */
  missingQueue(): string;
  /** How long nothing more must arrive before a queue counts as taken in full. */
  quietMs?: number;
  timeoutMs?: number;
  teardown?(): Promise<void>;
}

const logger = createLogger(process.env.TURNOUT_TEST_LOG_LEVEL ?? 'silent');

export function moveSuite(t: MoveTarget): void {
  const quiet = t.quietMs ?? 300;
  const timeout = t.timeoutMs ?? 30_000;
  const log = t.capabilities.consumerGroups;
  const moveGroup = (q: string): string => `turnout-move-${q}`;

  describe(`move and drained: ${t.name}`, () => {
    let a: BrokerAdapter;
    before(async () => {
      a = await t.create();
    });
    after(async () => {
      await a.close();
      await t.teardown?.();
    });

    const options = (from: string, to: string, over: Partial<MoveOptions> = {}): MoveOptions => ({
      from,
      to,
      where: [],
      dryRun: false,
      maxMoves: 3,
      group: moveGroup(from),
      versionHeader: 'x-schema-version',
      defaultVersion: 1,
      logger,
      ...over,
    });

    const publishAll = async (queue: string, messages: Message[]): Promise<void> => {
      for (let i = 0; i < messages.length; i += 100) await Promise.all(messages.slice(i, i + 100).map((m) => a.publish(queue, m)));
    };

    /** Consumes a queue (a fresh group on Kafka) until `expected` arrived and nothing more for a while; every delivery recorded. */
    const takeAll = async (queue: string, expected: number, tally: Tally, place = queue): Promise<Received[]> => {
      const got: Received[] = [];
      const sub = await a.consume(queue, async (m): Promise<Disposition> => {
        got.push(m);
        tally.record(place, m.id);
        return { kind: 'ack' };
      }, { prefetch: 100, group: `check-${randomUUID()}` });
      try {
        await waitFor(`${expected} messages from ${queue} (have ${got.length})`, () => got.length >= expected, timeout);
        await sleep(quiet);
      } finally {
        await sub.stop();
        await waitFor('the check consumer to settle', () => sub.inflight === 0, timeout);
      }
      return got;
    };

    /** What a later move of `from` would still find: on a log, past the move's group; elsewhere, the queue. */
    const leftOn = async (from: string): Promise<number> => {
      const [b] = await readBacklogs(a, [from], moveGroup);
      return (b?.depth ?? 0) + (b?.inflight ?? 0);
    };

    const message = (headers: Record<string, string>, over: Partial<Message> = {}): Message => ({
      id: randomUUID(),
      payload: Buffer.from(JSON.stringify({ n: randomUUID() })),
      headers,
      ...over,
    });

    test('a dead-letter queue of 2 000 mixed messages, redriven with filters to @source: each consumed there exactly once, the rest stays', async () => {
      const dlq = await t.newQueue();
      const srcA = await t.newQueue();
      const srcB = await t.newQueue();
      const reasons = ['max-attempts', 'rejected', 'unsupported-version', 'translate-error'];
      const all: Message[] = [];
      const expected = { [srcA]: new Set<string>(), [srcB]: new Set<string>() } as Record<string, Set<string>>;
      const stays = new Set<string>();
      let skipped = 0;
      const byVersion: Record<string, number> = {};
      for (let i = 0; i < 2000; i++) {
        const reason = reasons[i % 4] as string;
        const version = String(1 + (i % 3));
        const source = i % 25 === 0 ? undefined : i % 2 === 0 ? srcA : srcB;
        const headers: Record<string, string> = {
          'x-schema-version': version,
          'x-turnout-dlq-reason': reason,
          'x-turnout-error': 'app said 500',
          'x-turnout-attempts': '5',
          'x-turnout-failed-at': new Date().toISOString(),
          'x-turnout-deferrals': '2',
          'x-tenant': i % 5 === 0 ? 'acme' : 'other',
        };
        if (source !== undefined) headers['x-turnout-source'] = source;
        const m = message(headers, i % 3 === 0 ? { key: `k-${i % 40}` } : {});
        all.push(m);
        // --where reason=max-attempts --where header:x-tenant=other: both must hold
        const match = reason === 'max-attempts' && headers['x-tenant'] === 'other';
        if (match && source !== undefined) {
          expected[source]?.add(m.id);
          byVersion[version] = (byVersion[version] ?? 0) + 1;
        } else {
          if (match) skipped++;
          stays.add(m.id);
        }
      }
      await publishAll(dlq, all);
      const moved = (expected[srcA]?.size ?? 0) + (expected[srcB]?.size ?? 0);

      const s = await runMove(a, options(dlq, TO_SOURCE, { where: [parseWhere('reason=max-attempts'), parseWhere('header:x-tenant=other')] }));
      assert.deepEqual(
        { moved: s.moved, skipped: s.skipped, failed: s.failed, remaining: s.remaining, byReason: s.byReason, byVersion: s.byVersion },
        { moved, skipped, failed: 0, remaining: 2000 - moved, byReason: { 'max-attempts': moved }, byVersion },
      );
      assert.equal(exitCodeOf(s), 0);

      const tally = new Tally();
      for (const src of [srcA, srcB]) {
        const got = await takeAll(src, expected[src]?.size ?? 0, tally);
        for (const m of got) {
          // the dead-letter headers are gone, the move is counted, the rest is kept
          for (const h of ['x-turnout-dlq-reason', 'x-turnout-error', 'x-turnout-attempts', 'x-turnout-failed-at', 'x-turnout-deferrals']) assert.equal(m.headers[h], undefined, h);
          assert.equal(m.headers['x-turnout-moves'], '1');
          assert.equal(m.headers['x-turnout-source'], src);
          assert.equal(m.headers['x-tenant'], 'other');
          const original = all.find((o) => o.id === m.id);
          assert.ok(original, `an id that was never dead-lettered: ${m.id}`);
          assert.deepEqual(m.payload, original.payload);
          assert.equal(m.key, original.key);
        }
        assert.deepEqual(tally.ids(src), expected[src]);
      }
      assert.deepEqual(tally.duplicates(), []);
      if (log) {
        // The log keeps every record; the move's group has passed all of them.
        assert.equal(await leftOn(dlq), 0);
        const rest = new Tally();
        await takeAll(dlq, 2000, rest);
        assert.equal(rest.ids(dlq).size, 2000);
      } else {
        const rest = new Tally();
        await takeAll(dlq, stays.size, rest);
        assert.deepEqual(rest.ids(dlq), stays);
        assert.deepEqual(rest.duplicates(), []);
      }
    });

    test('lingering blue messages move to green; drained says no before and yes after', async () => {
      const blue = await t.newQueue();
      const green = await t.newQueue();
      const ids = new Set<string>();
      const ms: Message[] = [];
      for (let i = 0; i < 30; i++) {
        const m = message({ 'x-schema-version': '2' }, { key: `customer-${i}` });
        ms.push(m);
        ids.add(m.id);
      }
      await publishAll(blue, ms);
      const [before] = await readBacklogs(a, [blue], moveGroup);
      assert.ok(before && !isDrained(before) && before.depth === 30, `before: ${JSON.stringify(before)}`);
      const s = await runMove(a, options(blue, green));
      assert.equal(s.moved, 30);
      assert.equal(s.remaining, 0);
      assert.deepEqual(s.byReason, { none: 30 });
      assert.deepEqual(s.byVersion, { '2': 30 });
      await waitFor('blue to be drained', async () => (await readBacklogs(a, [blue], moveGroup)).every(isDrained), timeout);
      const tally = new Tally();
      const got = await takeAll(green, 30, tally);
      assert.deepEqual(tally.ids(green), ids);
      assert.deepEqual(tally.duplicates(), []);
      for (const m of got) assert.equal(m.headers['x-turnout-moves'], '1');
    });

    test('--dry-run counts by reason, version and source and leaves the queue as it was: same depth, same ids', async () => {
      const q = await t.newQueue();
      const to = await t.newQueue();
      const ms: Message[] = [];
      for (let i = 0; i < 40; i++) ms.push(message({ 'x-schema-version': String(1 + (i % 2)), 'x-turnout-dlq-reason': i % 4 === 0 ? 'rejected' : 'max-attempts', 'x-turnout-source': i % 8 === 0 ? 'a' : 'b' }));
      await publishAll(q, ms);
      const depth = await leftOn(q);
      assert.equal(depth, 40);
      const s = await runMove(a, options(q, to, { dryRun: true, where: [parseWhere('reason=max-attempts')] }));
      assert.deepEqual(
        { moved: s.moved, skipped: s.skipped, remaining: s.remaining, byReason: s.byReason, byVersion: s.byVersion, bySource: s.bySource },
        { moved: 30, skipped: 0, remaining: 40, byReason: { 'max-attempts': 30 }, byVersion: { '1': 10, '2': 20 }, bySource: { b: 30 } },
      );
      await waitFor('the depth as before', async () => (await leftOn(q)) === 40 || undefined, timeout);
      assert.equal((await readBacklogs(a, [to], moveGroup))[0]?.depth, 0, 'nothing reached --to');
      const tally = new Tally();
      await takeAll(q, 40, tally);
      assert.deepEqual(tally.ids(q), new Set(ms.map((m) => m.id)));
      assert.deepEqual(tally.duplicates(), []);
    });

    test('--max-moves: a message moved that often is skipped and stays; one below is moved and counted', async () => {
      const q = await t.newQueue();
      const to = await t.newQueue();
      const poison = message({ 'x-turnout-moves': '3' });
      const once = message({ 'x-turnout-moves': '2' });
      await publishAll(q, [poison, once]);
      const s = await runMove(a, options(q, to));
      assert.deepEqual({ moved: s.moved, skipped: s.skipped, remaining: s.remaining }, { moved: 1, skipped: 1, remaining: 1 });
      const tally = new Tally();
      const [got] = await takeAll(to, 1, tally);
      assert.equal(got?.id, once.id);
      assert.equal(got?.headers['x-turnout-moves'], '3');
      if (!log) {
        const rest = new Tally();
        await takeAll(q, 1, rest);
        assert.deepEqual(rest.ids(q), new Set([poison.id]));
      }
    });

    test('--max N moves N and leaves the rest', async () => {
      const q = await t.newQueue();
      const to = await t.newQueue();
      const ms = Array.from({ length: 10 }, () => message({}));
      await publishAll(q, ms);
      const s = await runMove(a, options(q, to, { max: 4 }));
      assert.deepEqual({ moved: s.moved, remaining: s.remaining }, { moved: 4, remaining: 6 });
      assert.equal(await leftOn(q), 6);
      const tally = new Tally();
      await takeAll(to, 4, tally);
      assert.equal(tally.ids(to).size, 4);
      assert.deepEqual(tally.duplicates(), []);
    });

    test('a copy the broker refuses (its destination is missing) stays on --from, is counted, and the exit code is 1', async () => {
      const q = await t.newQueue();
      const m = message({ 'x-turnout-source': t.missingQueue(), 'x-turnout-dlq-reason': 'rejected' });
      await publishAll(q, [m]);
      const s: MoveSummary = await runMove(a, options(q, TO_SOURCE));
      assert.deepEqual({ moved: s.moved, failed: s.failed, remaining: s.remaining }, { moved: 0, failed: 1, remaining: 1 });
      assert.equal(exitCodeOf(s), 1);
      await waitFor('the message to be back on --from', async () => (await leftOn(q)) === 1 || undefined, timeout);
      const tally = new Tally();
      const [back] = await takeAll(q, 1, tally);
      assert.equal(back?.id, m.id);
      assert.equal(back?.headers['x-turnout-dlq-reason'], 'rejected', 'the original is untouched');
    });

    test('drained counts deferred messages still waiting, apart from depth and in-flight', async () => {
      const q = await t.newQueue();
      const m = message({});
      await publishAll(q, [m]);
      let deferred = 0;
      const group = `turnout-${q}`;
      const sub = await a.consume(q, async (): Promise<Disposition> => {
        deferred++;
        return { kind: 'defer', delayMs: 60_000, headers: { 'x-turnout-deferrals': '1' } };
      }, { prefetch: 1, group });
      await waitFor('the deferral', () => deferred >= 1, timeout);
      const b: Backlog = await waitFor('the deferred copy to be counted', async () => {
        const [x] = await readBacklogs(a, [q], () => group);
        return x !== undefined && x.deferred === 1 && x.inflight === 0 ? x : undefined;
      }, timeout, 200) as Backlog;
      assert.equal(b.depth, 0);
      assert.equal(isDrained(b), false);
      await sub.stop();
      assert.equal(deferred, 1, 'handed out once');
    });
  });
}
