// Faults under load on the real RabbitMQ: 20 000 messages flow through real
// turnout processes to a real app while the sidecar is SIGKILLed and
// restarted, its broker connection is delayed, cut, black-holed and refused
// (test/support/fault-proxy.ts), and the app is slow, flaps and answers
// garbage (test/support/chaos-app.ts). Afterwards every message is accounted
// for: accepted by the app, or dead-lettered `rejected` for the ids the app
// refuses, nothing lost, nothing else anywhere.
//
// The duplicate bound: RabbitMQ never has more than the prefetch
// (TURNOUT_CONCURRENCY) messages unacknowledged on turnout's consumer
// channel, and it hands a message out again only when the connection holding
// it is gone. So each interruption (a kill, a cut, the connections a
// black-hole or refusal broke) can bring back at most `prefetch` messages
// that had reached their outcome, and every copy that comes back is flagged
// redelivered, and only after an interruption of the generation that made
// the first copy. Connections in delay mode stay up and bring back nothing.

import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import * as amqp from 'amqplib';
import { test, type TestContext } from 'node:test';
import { startChaosApp } from '../../support/chaos-app.ts';
import { assertFaultsHappened, account, laterCopies, PhaseGates, producePaced, runChaos, unexplainedDuplicates, type Interruption } from '../../support/chaos.ts';
import { startFaultProxy } from '../../support/fault-proxy.ts';
import { startTurnout, type TurnoutProcess } from '../../support/process.ts';
import { waitFor } from '../../support/wait.ts';
import { rabbitShared } from './lock.ts';
import { AMQP_URL, TestRabbit } from './rabbit.ts';

const TOTAL = 20_000;
const PREFETCH = 16;
/** The pace: 20 000 over 40 s, the last fifth held back for the app phases (producePaced). */
const PRODUCE_MS = 40_000;

/** Publishes `ids` straight to RabbitMQ (not through the proxy) at a steady pace, in confirmed batches. */
async function produce(queue: string, ids: string[], gates: PhaseGates): Promise<void> {
  const conn = await amqp.connect(AMQP_URL);
  try {
    const ch = await conn.createConfirmChannel();
    await producePaced({ total: ids.length, ms: PRODUCE_MS, gates, send: async (from, to) => {
      for (const [j, id] of ids.slice(from, to).entries()) {
        ch.sendToQueue(queue, Buffer.from(JSON.stringify({ n: from + j })), { persistent: true, messageId: id, contentType: 'application/json' });
      }
      await ch.waitForConfirms();
    } });
  } finally {
    await conn.close().catch(() => {});
  }
}

test('amqp: 20 000 messages through kills, broker-connection faults and a misbehaving app: nothing lost, duplicates bounded', async (t: TestContext) => {
  const release = await rabbitShared();
  const rabbit = new TestRabbit('load-faults');
  const broker = new URL(AMQP_URL);
  const proxy = await startFaultProxy({ host: broker.hostname, port: Number(broker.port || 5672) });
  const ids = Array.from({ length: TOTAL }, (_, i) => `${randomUUID().slice(0, 8)}-${i}`);
  const rejectedIds = new Set(ids.filter((_, i) => i % 100 === 37));
  const rejected = (id: string): boolean => rejectedIds.has(id);
  const app = await startChaosApp({ rejects: rejected });
  const procs: TurnoutProcess[] = [];
  try {
    const q = await rabbit.queue('classic', 'load');
    const dlq = await rabbit.queue('classic', 'load-dlq');
    const via = new URL(AMQP_URL);
    via.hostname = proxy.host;
    via.port = String(proxy.port);
    // A black-holed connection is noticed after two missed heartbeats.
    via.searchParams.set('heartbeat', '2');
    const start = async (gen: number): Promise<TurnoutProcess> => {
      const p = await startTurnout({
        TURNOUT_BROKER: via.toString(),
        TURNOUT_SOURCE: q,
        TURNOUT_DLQ: dlq,
        TURNOUT_APP_URL: app.urlFor(gen),
        TURNOUT_CONCURRENCY: String(PREFETCH),
        TURNOUT_MAX_ATTEMPTS: '10',
        TURNOUT_RETRY_BACKOFF: '20',
      }, { timeoutMs: 60_000, waitReady: true });
      procs.push(p);
      return p;
    };
    const gates = new PhaseGates();
    const producing = produce(q, ids, gates);
    const run = await runChaos({
      start,
      proxy,
      app,
      kills: 3,
      gates,
      onInterruption: async () => {},
      log: (s) => t.diagnostic(s),
    });
    await producing;
    await waitFor('every message accepted or answered 400', () => ids.every((id) => app.finals.has(id)), 180_000, 200);
    await waitFor('the source queue empty', async () => (await rabbit.ready(q)) === 0, 30_000, 200);
    assert.equal(await run.current.stop('SIGTERM'), 0, 'the last generation drains cleanly');
    assert.equal(await rabbit.ready(q), 0, 'nothing left in the source queue (nothing unacked came back)');

    const dlqCopies = new Map<string, string[]>();
    for (const m of await rabbit.drain(dlq)) {
      const id = String(m.properties.messageId);
      dlqCopies.set(id, [...(dlqCopies.get(id) ?? []), String(m.properties.headers?.['x-turnout-dlq-reason'])]);
    }
    const acc = account(ids, rejected, app, dlqCopies);
    assert.deepEqual(acc.problems.slice(0, 20), [], `${acc.problems.length} accounting problems`);

    const interruptions: Interruption[] = run.interruptions;
    const bound = PREFETCH * interruptions.length;
    t.diagnostic(`${TOTAL} messages, ${rejectedIds.size} rejected → DLQ; ${run.gens} generations; interruptions ${interruptions.map((e) => e.kind).join(', ')}; ` +
      `${acc.duplicates.length} ids came twice (${acc.extra} extra copies, bound ${bound}); app answers ${JSON.stringify(app.answers)}; proxy ${JSON.stringify(proxy.stats)}`);
    assert.ok(acc.extra <= bound, `${acc.extra} extra copies; at most ${PREFETCH} unacked per interruption × ${interruptions.length}`);
    // Per generation: what the broker could hand back from a generation is what that generation held at its own interruptions.
    for (let g = 0; g < run.gens; g++) {
      const fromG = acc.duplicates.filter((id) => (app.accepted.get(id)?.[0] ?? app.deliveries.find((d) => d.id === id && d.answer === 'rejected'))?.gen === g).length;
      const own = interruptions.filter((e) => e.gen === g).length;
      assert.ok(fromG <= PREFETCH * own, `generation ${g}: ${fromG} of its outcomes came again, ${own} interruptions`);
    }
    for (const d of laterCopies(app, acc.duplicates)) assert.equal(d.redelivered, true, `the second copy of ${d.id} is flagged redelivered`);
    assert.deepEqual(unexplainedDuplicates(app, acc.duplicates, run.interruptions), [], 'every duplicate follows an interruption of the generation that made its first copy');
    // The faults happened to a flowing stream.
    assertFaultsHappened(app, proxy, run.gens);
  } finally {
    for (const p of procs) await p.kill();
    await app.close();
    await proxy.close();
    await rabbit.teardown();
    release();
  }
});
