// Faults under load on Kafka (librdkafka's mock cluster): 20 000 messages
// flow through real turnout processes to a real app while the sidecar is
// SIGKILLed and restarted, its broker connections are delayed, cut,
// black-holed and refused (test/support/fault-proxy.ts; the mock's own
// address is redirected to the proxy by test/support/redirect-connect.ts,
// since Kafka metadata would otherwise send the client around it), and the
// app is slow, flaps and answers garbage. Afterwards every message is
// accounted for: accepted by the app, or on the DLQ topic `rejected` for the
// ids the app refuses; nothing lost, nothing else.
//
// The duplicate bound: a consumer starts reading a partition at the group's
// committed offset when partitions are assigned to it (a new process, or a
// rejoin after the group lost it), and only then. So the copies that can
// come again at an assignment are those with a final outcome but not yet
// committed: (final outcomes so far) − (committed offsets). The test samples
// both every 250 ms, reading the committed offsets first, and for each
// assignment turnout logs takes final outcomes from the first sample after it
// and committed offsets from the last sample before it: an upper bound,
// certain, on what that assignment could hand out again.

import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { Kafka, logLevel } from 'kafkajs';
import { test, type TestContext } from 'node:test';
import { startChaosApp } from '../../support/chaos-app.ts';
import { assertFaultsHappened, account, PhaseGates, producePaced, runChaos } from '../../support/chaos.ts';
import { startFaultProxy } from '../../support/fault-proxy.ts';
import { startTurnout, type TurnoutProcess } from '../../support/process.ts';
import { sleep, waitFor } from '../../support/wait.ts';
import { startMockCluster } from './cluster.ts';
import { kafkaEnv } from './env.ts';
import { readTopics, testProducer } from './topics.ts';

const TOTAL = 20_000;
const CONCURRENCY = 16;
const PRODUCE_MS = 40_000;
const REDIRECT = fileURLToPath(new URL('../../support/redirect-connect.ts', import.meta.url));

interface Sample {
  at: number;
  committed: number;
  final: number;
}

test('kafka: 20 000 messages through kills, connection faults and a misbehaving app: nothing lost, duplicates bounded', async (t: TestContext) => {
  const cluster = await startMockCluster();
  const [mockHost, mockPort] = (cluster.brokers[0] as string).split(':');
  const proxy = await startFaultProxy({ host: mockHost as string, port: Number(mockPort) });
  const ids = Array.from({ length: TOTAL }, (_, i) => `${randomUUID().slice(0, 8)}-${i}`);
  const rejectedIds = new Set(ids.filter((_, i) => i % 100 === 37));
  const rejected = (id: string): boolean => rejectedIds.has(id);
  const app = await startChaosApp({ rejects: rejected });
  const procs: TurnoutProcess[] = [];
  const admin = new Kafka({ brokers: cluster.brokers, clientId: 'turnout-test-offsets', logLevel: logLevel.NOTHING }).admin();
  let sampling = true;
  let sampler: Promise<void> = Promise.resolve();
  try {
    const src = await cluster.newTopic(4, 'load');
    const dlq = `${src}.dlq`;
    await cluster.createTopic(dlq, 1);
    const group = `turnout-${src}`;
    await admin.connect();
    const committed = async (): Promise<number> => {
      const [tp] = await admin.fetchOffsets({ groupId: group, topics: [src] });
      return (tp?.partitions ?? []).reduce((n, p) => n + Math.max(0, Number(p.offset)), 0);
    };
    const samples: Sample[] = [];
    sampler = (async () => {
      while (sampling) {
        const at = Date.now();
        const c = await committed().catch(() => undefined);
        if (c !== undefined) samples.push({ at, committed: c, final: app.finals.size });
        await sleep(250);
      }
    })();

    const start = async (gen: number): Promise<TurnoutProcess> => {
      const p = await startTurnout({
        ...kafkaEnv(cluster),
        TURNOUT_BROKER: `kafka://${proxy.host}:${proxy.port}`,
        FAULT_REDIRECT_FROM: String(mockPort),
        FAULT_REDIRECT_TO: `${proxy.host}:${proxy.port}`,
        TURNOUT_SOURCE: src,
        TURNOUT_DLQ: dlq,
        TURNOUT_APP_URL: app.urlFor(gen),
        TURNOUT_CONCURRENCY: String(CONCURRENCY),
        TURNOUT_MAX_ATTEMPTS: '10',
        TURNOUT_RETRY_BACKOFF: '20',
      }, { timeoutMs: 60_000, nodeArgs: ['--import', REDIRECT] });
      procs.push(p);
      return p;
    };
    const gates = new PhaseGates();
    const producing = (async () => {
      const producer = await testProducer(cluster);
      try {
        await producePaced({ total: TOTAL, ms: PRODUCE_MS, gates, send: async (from, to) => {
          await producer.send(src, ids.slice(from, to).map((id, j) => ({ key: `k${(from + j) % 64}`, value: JSON.stringify({ n: from + j }), headers: { 'x-turnout-id': id } })));
        } });
      } finally {
        await producer.close();
      }
    })();
    const run = await runChaos({ start, proxy, app, kills: 3, gates, onInterruption: async () => {}, log: (s) => t.diagnostic(s) });
    await producing;
    await waitFor('every message accepted or answered 400', () => ids.every((id) => app.finals.has(id)), 180_000, 200).catch(async (err: unknown) => {
      const open = ids.filter((id) => !app.finals.has(id));
      const tail = run.current.logs().filter((l) => l.level !== 'info' || String(l.msg).includes('kafka')).slice(-30).map((l) => JSON.stringify(l)).join('\n');
      throw new Error(`${(err as Error).message}: ${open.length} open (${open.slice(0, 5).join(', ')}), committed ${await committed()}, last deliveries ${JSON.stringify(app.deliveries.slice(-3))}\n${tail}`);
    });
    await waitFor('everything committed', async () => (await committed()) === TOTAL, 30_000, 200);
    assert.equal(await run.current.stop('SIGTERM'), 0, 'the last generation drains cleanly');
    sampling = false;
    await sampler;

    const seen = await readTopics(cluster, [dlq], (s) => new Set(s.map((m) => m.headers['x-turnout-id'])).size >= rejectedIds.size, { timeoutMs: 30_000, quietMs: 1000 });
    const dlqCopies = new Map<string, string[]>();
    for (const m of seen) {
      const id = String(m.headers['x-turnout-id']);
      dlqCopies.set(id, [...(dlqCopies.get(id) ?? []), String(m.headers['x-turnout-dlq-reason'])]);
    }
    const acc = account(ids, rejected, app, dlqCopies);
    assert.deepEqual(acc.problems.slice(0, 20), [], `${acc.problems.length} accounting problems`);

    // Never committed past what had its outcome (committed is read before final outcomes in each sample).
    for (const s of samples) assert.ok(s.committed <= s.final, `at ${s.at}: committed ${s.committed} > final outcomes ${s.final}`);
    const assignments = procs.flatMap((p) => p.logs().filter((l) => l.msg === 'kafka partitions assigned').map((l) => Date.parse(String(l.time))));
    let bound = 0;
    for (const at of assignments) {
      const before = [...samples].reverse().find((s) => s.at <= at);
      const after = samples.find((s) => s.at >= at);
      // Before the first sample nothing was committed; after the last, everything had its outcome.
      bound += (after?.final ?? TOTAL) - (before?.committed ?? 0);
    }
    t.diagnostic(`${TOTAL} messages, ${rejectedIds.size} rejected → DLQ; ${run.gens} generations; ${assignments.length} assignments; ` +
      `${acc.duplicates.length} ids came twice (${acc.extra} extra copies, bound ${bound}); app answers ${JSON.stringify(app.answers)}; proxy ${JSON.stringify(proxy.stats)}`);
    assert.ok(acc.extra <= bound, `${acc.extra} extra copies; final but uncommitted at the assignments: ${bound}`);
    assertFaultsHappened(app, proxy, run.gens);
  } finally {
    sampling = false;
    await sampler.catch(() => {});
    for (const p of procs) await p.kill();
    await admin.disconnect().catch(() => {});
    await app.close();
    await proxy.close();
    await cluster.stop();
  }
});
