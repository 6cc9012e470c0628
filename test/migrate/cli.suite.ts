// `turnout move` and `turnout drained` as the real processes, per broker:
// a move SIGKILLed half-way and run again loses nothing, and duplicates no
// more than what was in flight at the kill. The move handles one message at
// a time (copy confirmed, then the original removed), so at the kill at most
// one message was copied and not yet removed: that is the bound, exactly.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { describe, test } from 'node:test';
import type { BrokerAdapter, Disposition, Message } from '../../adapters/broker.ts';
import { CLI, runTurnout } from '../support/process.ts';
import { Tally } from '../support/tally.ts';
import { sleep, waitFor } from '../support/wait.ts';

export interface CliTarget {
  name: string;
  /** TURNOUT_* (and SDK) variables that point a turnout process at the broker. */
  env: Record<string, string>;
  create(): Promise<BrokerAdapter>;
  newQueue(): Promise<string>;
  /**
   * The broker keeps every record in a log read by groups (Kafka): copies on
   * --to are counted from the log (a consumer's count lags behind it).
   */
  log?: boolean;
  /** After a SIGKILL, what the killed process held becomes available again (SQS: its visibility timeout). */
  heldBackMs?: number;
  /**
   * Brings the broker's counts up to date before they are read (fauxqs hands
   * expired in-flight messages back to their queue only when someone receives).
   */
  refresh?(queue: string): Promise<void>;
  timeoutMs?: number;
}

const summaryOf = (stdout: string): Record<string, unknown> => JSON.parse(stdout.trim().split('\n').pop() ?? '{}') as Record<string, unknown>;

export function cliSuite(t: CliTarget): void {
  const timeout = t.timeoutMs ?? 30_000;
  describe(`turnout move / drained processes: ${t.name}`, () => {
    test('a move interrupted by SIGTERM, then one SIGKILLed half-way, then run again: every message arrives, duplicates at most the one in flight at the kill; drained before and after', async () => {
      const a = await t.create();
      try {
        const from = await t.newQueue();
        const to = await t.newQueue();
        const n = 200;
        const ms: Message[] = Array.from({ length: n }, (_, i) => ({ id: randomUUID(), payload: Buffer.from(`{"i":${i}}`), headers: { 'x-schema-version': '2' } }));
        for (let i = 0; i < n; i += 50) await Promise.all(ms.slice(i, i + 50).map((m) => a.publish(from, m)));

        const groupEnv = { TURNOUT_GROUP: 'turnout-move-{source}' };
        const before = await runTurnout(['drained', from, '--json'], { ...t.env, ...groupEnv });
        assert.equal(before.code, 1, before.stderr);
        const b = JSON.parse(before.stdout) as { drained: boolean; queues: { depth: number }[] };
        assert.equal(b.drained, false);
        assert.equal(b.queues[0]?.depth, n);

        // Killed when part of the messages has arrived (counted by a consumer of --to).
        const tally = new Tally();
        const sub = await a.consume(to, async (m): Promise<Disposition> => {
          tally.record(to, m.id);
          return { kind: 'ack' };
        }, { prefetch: 50, group: `check-${randomUUID()}` });
        // First interrupted with SIGTERM (it finishes the message at hand, prints its summary, exit 1),
        // then run again and SIGKILLed, each when more of the move has arrived (counted by a consumer of --to).
        const interrupted = async (signal: NodeJS.Signals, arrived: number): Promise<{ exit: unknown; stdout: string; stderr: string }> => {
          const child = spawn(process.execPath, [CLI, 'move', '--from', from, '--to', to, '--rate', '25'], { env: { ...process.env, ...t.env }, stdio: ['ignore', 'pipe', 'pipe'] });
          let stdout = '';
          let stderr = '';
          child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
          child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
          const exited = new Promise<unknown>((r) => child.once('exit', (code, sig) => r(code ?? sig)));
          await waitFor(`${arrived} of the move to arrive`, async () => (await copies()) >= arrived, timeout);
          child.kill(signal);
          return { exit: await exited, stdout, stderr };
        };
        // On a log, a group that never commits sees every record on --to.
        const copies = async (): Promise<number> => (t.log ? ((await a.backlog(to, { group: `never-${to}` })).depth) : tally.count(to));
        const term = await interrupted('SIGTERM', 30);
        assert.equal(term.exit, 1, term.stderr);
        const first = summaryOf(term.stdout);
        assert.ok(Number(first.moved) >= 30 && Number(first.remaining) > 0, term.stdout);
        assert.equal(first.failed, 0);
        // SIGTERM lets the message at hand finish: nothing was copied twice so far.
        await waitFor('the first run\'s copies', () => tally.count(to) >= Number(first.moved), timeout);
        assert.deepEqual(tally.duplicates(), []);
        const kill = await interrupted('SIGKILL', Number(first.moved) + 30);
        assert.equal(kill.exit, 'SIGKILL', kill.stderr);
        const atKill = await copies();
        assert.ok(atKill < n, `the move had finished before the kill (${atKill})`);
        if (t.heldBackMs) await sleep(t.heldBackMs);
        // And wait until the broker says so: on a loaded machine the emulator may hand them back later
        // than the visibility timeout, and a move started before would rightly not see them.
        await waitFor('what the killed move held to be back on --from', async () => {
          await t.refresh?.(from);
          return (await a.backlog(from, { group: `never-${from}` })).inflight === 0;
        }, timeout, 200);

        const again = await runTurnout(['move', '--from', from, '--to', to], t.env, timeout * 2);
        assert.equal(again.code, 0, again.stderr);
        const s = summaryOf(again.stdout);
        assert.equal(s.failed, 0);
        assert.equal(s.remaining, 0);
        await waitFor(`all ${n} on --to (${tally.ids(to).size})`, () => tally.ids(to).size >= n, timeout);
        await sleep(500);
        await sub.stop();
        assert.deepEqual(tally.missing(ms.map((m) => m.id)), []);
        const dups = tally.duplicates();
        assert.ok(dups.length <= 1, `duplicates ${dups.length}: more than the one message in flight at the kill`);
        assert.equal(tally.count(to), n + dups.length);
        // The first run had removed at least what had arrived at the kill, but the one in flight.
        assert.ok(Number(s.moved) <= n - atKill + 1, JSON.stringify(s));

        const after = await runTurnout(['drained', from, '--json', '--wait', '10s'], { ...t.env, ...groupEnv });
        assert.equal(after.code, 0, after.stdout + after.stderr);
        assert.equal((JSON.parse(after.stdout) as { drained: boolean }).drained, true);
      } finally {
        await a.close();
      }
    });

    test('--dry-run as a process: the JSON summary line, exit 0, nothing reaches --to', async () => {
      const a = await t.create();
      try {
        const from = await t.newQueue();
        const to = await t.newQueue();
        await a.publish(from, { id: randomUUID(), payload: Buffer.from('{}'), headers: { 'x-turnout-dlq-reason': 'rejected', 'x-schema-version': '3', 'x-turnout-source': 'orders' } });
        const dry = await runTurnout(['move', '--from', from, '--to', to, '--dry-run'], t.env, timeout);
        assert.equal(dry.code, 0, dry.stderr);
        assert.deepEqual(summaryOf(dry.stdout), { moved: 1, skipped: 0, remaining: 1, byReason: { rejected: 1 }, byVersion: { '3': 1 }, bySource: { orders: 1 }, failed: 0 });
        const toDepth = await runTurnout(['drained', to, '--json'], { ...t.env, TURNOUT_GROUP: 'turnout-move-{source}' });
        assert.equal(toDepth.code, 0, `--to received nothing: ${toDepth.stdout}`);
      } finally {
        await a.close();
      }
    });
  });
}
