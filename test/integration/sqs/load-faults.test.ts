// Faults under load on SQS (the fauxqs emulator): 20 000 messages flow
// through real turnout processes to a real app while the sidecar is
// SIGKILLed and restarted, its connection to SQS is delayed, cut,
// black-holed and refused (test/support/fault-proxy.ts), and the app is
// slow, flaps and answers garbage (test/support/chaos-app.ts). Afterwards
// every message is accounted for: accepted by the app, or dead-lettered
// `rejected` for the ids the app refuses; nothing lost, nothing else.
//
// The duplicate bound: SQS hands a message out again only after it was
// received and not deleted. At each interruption the test asks the emulator
// directly (not through the proxy) how many messages are in flight
// (received, not deleted): only those can come twice, so the sum over all
// interruptions bounds the extra copies. Faults that hit no held message
// (a cut whose requests the SDK retries) add to the bound, not to the copies.
// Each second copy must follow an interruption of the generation that made
// the first, and carry ApproximateReceiveCount > 1 (redelivered).

import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { SendMessageBatchCommand } from '@aws-sdk/client-sqs';
import { test, type TestContext } from 'node:test';
import { encode } from '../../../adapters/sqs/codec.ts';
import { startChaosApp } from '../../support/chaos-app.ts';
import { assertFaultsHappened, account, laterCopies, PhaseGates, producePaced, runChaos, unexplainedDuplicates, type Interruption } from '../../support/chaos.ts';
import { startFaultProxy } from '../../support/fault-proxy.ts';
import { startTurnout, type TurnoutProcess } from '../../support/process.ts';
import { waitFor } from '../../support/wait.ts';
import { startEmulator } from './fauxqs.ts';

const TOTAL = 20_000;
const CONCURRENCY = 16;
const PRODUCE_MS = 40_000;

test('sqs: 20 000 messages through kills, connection faults and a misbehaving app: nothing lost, duplicates bounded', async (t: TestContext) => {
  // A child process, so that the emulator's work does not share an event loop with the app and the proxy.
  const emu = await startEmulator({ mode: 'child' });
  const target = new URL(emu.url);
  const proxy = await startFaultProxy({ host: target.hostname, port: Number(target.port) });
  const ids = Array.from({ length: TOTAL }, (_, i) => `${randomUUID().slice(0, 8)}-${i}`);
  const rejectedIds = new Set(ids.filter((_, i) => i % 100 === 37));
  const rejected = (id: string): boolean => rejectedIds.has(id);
  const app = await startChaosApp({ rejects: rejected });
  const procs: TurnoutProcess[] = [];
  try {
    const q = emu.name('load');
    const dlq = emu.name('load-dlq');
    // Short visibility, so that what a killed sidecar held comes back within the test.
    const queueUrl = await emu.createQueue(q, { VisibilityTimeout: '5' });
    await emu.createQueue(dlq);
    const start = async (gen: number): Promise<TurnoutProcess> => {
      const p = await startTurnout({
        ...emu.env,
        AWS_ENDPOINT_URL_SQS: `http://${proxy.host}:${proxy.port}`,
        TURNOUT_BROKER: 'sqs',
        TURNOUT_SQS_WAIT_TIME: '1',
        TURNOUT_SOURCE: q,
        TURNOUT_DLQ: dlq,
        TURNOUT_APP_URL: app.urlFor(gen),
        TURNOUT_CONCURRENCY: String(CONCURRENCY),
        TURNOUT_MAX_ATTEMPTS: '10',
        TURNOUT_RETRY_BACKOFF: '20',
      }, { timeoutMs: 60_000 });
      procs.push(p);
      return p;
    };
    const gates = new PhaseGates();
    const producing = producePaced({ total: TOTAL, ms: PRODUCE_MS, gates, send: async (from, to) => {
      const slice = ids.slice(from, to);
      const batches: Promise<unknown>[] = [];
      for (let b = 0; b < slice.length; b += 10) {
        const entries = slice.slice(b, b + 10).map((id, j) => {
          const e = encode({ id, payload: Buffer.from(JSON.stringify({ n: from + b + j })), headers: {}, contentType: 'application/json' }, { spill: false });
          return { Id: String(j), MessageBody: e.body, MessageAttributes: e.attributes };
        });
        batches.push(emu.client.send(new SendMessageBatchCommand({ QueueUrl: queueUrl, Entries: entries })).then((r) => {
          if ((r.Failed ?? []).length > 0) throw new Error(`send failed: ${JSON.stringify(r.Failed)}`);
        }));
      }
      await Promise.all(batches);
    } });
    let bound = 0;
    const held: string[] = [];
    const run = await runChaos({
      start,
      proxy,
      app,
      kills: 3,
      gates,
      onInterruption: async (e: Interruption) => {
        const c = await emu.counts(q);
        bound += c.inflight;
        held.push(`${e.kind} ${c.inflight}`);
      },
      log: (s) => t.diagnostic(s),
    });
    await producing;
    await waitFor('every message accepted or answered 400', () => ids.every((id) => app.finals.has(id)), 180_000, 200);
    await waitFor('the source queue empty', async () => {
      const c = await emu.counts(q);
      return c.visible === 0 && c.inflight === 0 && c.delayed === 0;
    }, 30_000, 200);
    assert.equal(await run.current.stop('SIGTERM'), 0, 'the last generation drains cleanly');

    const dlqCopies = new Map<string, string[]>();
    for (const m of await emu.drain(dlq)) dlqCopies.set(m.id, [...(dlqCopies.get(m.id) ?? []), String(m.headers['x-turnout-dlq-reason'])]);
    const acc = account(ids, rejected, app, dlqCopies);
    assert.deepEqual(acc.problems.slice(0, 20), [], `${acc.problems.length} accounting problems`);
    t.diagnostic(`${TOTAL} messages, ${rejectedIds.size} rejected → DLQ; ${run.gens} generations; in flight at each interruption: ${held.join(', ')}; ` +
      `${acc.duplicates.length} ids came twice (${acc.extra} extra copies, bound ${bound}); app answers ${JSON.stringify(app.answers)}; proxy ${JSON.stringify(proxy.stats)}`);
    assert.ok(acc.extra <= bound, `${acc.extra} extra copies; received-but-not-deleted at the interruptions: ${bound}`);
    for (const d of laterCopies(app, acc.duplicates)) assert.equal(d.redelivered, true, `the second copy of ${d.id} is flagged redelivered (ApproximateReceiveCount > 1)`);
    assert.deepEqual(unexplainedDuplicates(app, acc.duplicates, run.interruptions), [], 'every duplicate follows an interruption of the generation that made its first copy');
    assertFaultsHappened(app, proxy, run.gens);
  } finally {
    for (const p of procs) await p.kill();
    await app.close();
    await proxy.close();
    await emu.stop();
  }
});
