// Faults with real turnout consumer processes on the real RabbitMQ: the broker
// restarting mid-stream, a turnout killed with SIGKILL mid-stream, and SIGTERM
// with slow in-flight work (clean drain, and a drain deadline that passes).
// After each: every message delivered at least once, none lost, none left in
// the queue; duplicates are counted and reported (at-least-once).

import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, describe, test, type TestContext } from 'node:test';
import { startApp, type TestApp } from '../../support/app.ts';
import { startTurnout, type TurnoutProcess } from '../../support/process.ts';
import { Tally } from '../../support/tally.ts';
import { sleep, waitFor } from '../../support/wait.ts';
import { rabbitExclusive, rabbitShared } from './lock.ts';
import { AMQP_URL, RetryingProducer, TestRabbit } from './rabbit.ts';
import { restartRabbit } from './rabbitmqctl.ts';

const body = (n: number): Buffer => Buffer.from(JSON.stringify({ n }));

/** Accounts for what the app saw: every delivery, and which came flagged as redelivered. */
function appTally(app: TestApp): Tally {
  const t = new Tally();
  for (const d of app.deliveries) t.record(d.headers['x-turnout-redelivered'] === 'true' ? 'redelivered' : 'delivered', d.id);
  return t;
}

const readyz = async (p: TurnoutProcess): Promise<number> => {
  try {
    return (await fetch(`${p.baseUrl}/readyz`, { signal: AbortSignal.timeout(1000) })).status;
  } catch {
    return 0;
  }
};

describe('amqp: faults with real turnout processes', () => {
  const rabbit = new TestRabbit('faults');
  const procs: TurnoutProcess[] = [];
  const apps: TestApp[] = [];
  const start = async (env: Record<string, string>): Promise<TurnoutProcess> => {
    const p = await startTurnout({ TURNOUT_BROKER: AMQP_URL, TURNOUT_RETRY_BACKOFF: '20', ...env });
    procs.push(p);
    return p;
  };
  const app = async (behave: Parameters<typeof startApp>[0]): Promise<TestApp> => {
    const a = await startApp(behave);
    apps.push(a);
    return a;
  };

  after(async () => {
    for (const p of procs) await p.kill();
    for (const a of apps) await a.close();
    await rabbit.teardown();
  });

  test('RabbitMQ stop_app/start_app mid-stream: /readyz 503 while down, reconnect, nothing lost', async (t: TestContext) => {
    // Nobody else may use RabbitMQ while it is down: wait for the other test files, hold them off.
    await rabbitExclusive(async () => {
      const q = await rabbit.queue('quorum', 'restart');
      const dlq = await rabbit.queue('classic', 'restart-dlq');
      const a = await app(() => ({ status: 200, delayMs: 10 }));
      const turnout = await start({ TURNOUT_SOURCE: q, TURNOUT_APP_URL: a.url, TURNOUT_DLQ: dlq, TURNOUT_CONCURRENCY: '8' });
      const producer = new RetryingProducer();
      const ids = Array.from({ length: 400 }, () => randomUUID());
      let produced = 0;
      const producing = (async () => {
        for (const [n, id] of ids.entries()) {
          await producer.publish(q, id, body(n));
          produced++;
          await sleep(8);
        }
      })();
      try {
        await waitFor('a stream under way', () => a.accepted.size >= 80, 30_000);
        let sawNotReady = false;
        await restartRabbit(3000, async () => {
          sawNotReady = await waitFor('/readyz 503 while RabbitMQ is down', async () => (await readyz(turnout)) === 503, 5000, 50);
        });
        assert.ok(sawNotReady);
        await waitFor('/readyz 200 after start_app', async () => (await readyz(turnout)) === 200, 30_000, 100);
        await producing;
      } finally {
        await producing.catch(() => {});
        await producer.close();
      }
      assert.equal(produced, ids.length);
      await waitFor('every message delivered', () => ids.every((id) => a.accepted.has(id)), 60_000, 100);
      await sleep(1000);
      const tally = appTally(a);
      assert.deepEqual(tally.missing(ids), []);
      const dupes = tally.duplicates();
      t.diagnostic(`restart: ${ids.length} messages, ${dupes.length} delivered more than once (${tally.count('redelivered')} flagged redelivered), producer retries ${producer.retries}`);
      // At-least-once: the in-flight window (prefetch 8) plus publishes whose confirm was lost.
      assert.ok(dupes.length <= 8 + producer.retries, `duplicates ${dupes.length}`);
      await waitFor('queue empty', async () => (await rabbit.ready(q)) === 0, 5000);
      assert.equal(await rabbit.ready(dlq), 0, 'nothing dead-lettered');
      assert.ok(turnout.logs().some((l) => String(l.msg).includes('reconnected')), 'the log says it reconnected');
      assert.equal(await turnout.stop('SIGTERM'), 0);
    });
  });

  test('SIGKILL of a consumer turnout mid-stream, then a new one: every message delivered, redeliveries flagged', async (t: TestContext) => {
    const release = await rabbitShared();
    try {
      const q = await rabbit.queue('classic', 'kill');
      const dlq = await rabbit.queue('classic', 'kill-dlq');
      const producer = new RetryingProducer();
      const ids = Array.from({ length: 300 }, () => randomUUID());
      for (const [n, id] of ids.entries()) await producer.publish(q, id, body(n));
      await producer.close();
      const a = await app(() => ({ status: 200, delayMs: 15 }));
      const env = { TURNOUT_SOURCE: q, TURNOUT_APP_URL: a.url, TURNOUT_DLQ: dlq, TURNOUT_CONCURRENCY: '8' };
      const first = await start(env);
      await waitFor('a third processed', () => a.accepted.size >= 100, 30_000);
      assert.equal(await first.kill(), 'SIGKILL');
      const atKill = a.deliveries.length;
      const second = await start(env);
      await waitFor('every message delivered', () => ids.every((id) => a.accepted.has(id)), 60_000, 100);
      await sleep(500);
      const tally = appTally(a);
      assert.deepEqual(tally.missing(ids), []);
      const dupes = tally.duplicates();
      t.diagnostic(`SIGKILL after ${atKill} deliveries: ${dupes.length} delivered twice, ${tally.count('redelivered')} flagged redelivered`);
      assert.ok(dupes.length <= 8, `only the in-flight window (8) may come twice, got ${dupes.length}`);
      for (const id of dupes) assert.equal(tally.placesOf(id).redelivered, 1, `second copy of ${id} is flagged redelivered`);
      await waitFor('queue empty', async () => (await rabbit.ready(q)) === 0, 5000);
      assert.equal(await rabbit.ready(dlq), 0);
      assert.equal(await second.stop('SIGTERM'), 0);
    } finally {
      release();
    }
  });

  test('SIGTERM with slow in-flight work: takes nothing new, finishes the work, exits 0; the rest waits for the next turnout', async () => {
    const release = await rabbitShared();
    try {
      const q = await rabbit.queue('quorum', 'drain');
      const dlq = await rabbit.queue('classic', 'drain-dlq');
      const producer = new RetryingProducer();
      const ids = Array.from({ length: 12 }, () => randomUUID());
      for (const [n, id] of ids.entries()) await producer.publish(q, id, body(n));
      await producer.close();
      let slow = true;
      const a = await app(() => ({ status: 200, delayMs: slow ? 2000 : 5 }));
      const env = { TURNOUT_SOURCE: q, TURNOUT_APP_URL: a.url, TURNOUT_DLQ: dlq, TURNOUT_CONCURRENCY: '4', TURNOUT_DRAIN_TIMEOUT: '15000' };
      const first = await start(env);
      await waitFor('four in flight', () => a.active() === 4, 10_000);
      const inFlight = a.deliveries.map((d) => d.id);
      assert.equal(inFlight.length, 4);
      const exited = first.stop('SIGTERM');
      await waitFor('/readyz 503 while draining', async () => (await readyz(first)) === 503, 2000, 20);
      assert.equal(await exited, 0, 'clean drain');
      assert.equal(a.deliveries.length, 4, 'nothing new taken after SIGTERM');
      for (const id of inFlight) assert.equal(a.accepted.get(id)?.length, 1, `in-flight ${id} finished`);
      assert.equal(await rabbit.ready(q), 8, 'the other eight wait in the queue');
      slow = false;
      const second = await start(env);
      await waitFor('the rest', () => ids.every((id) => a.accepted.has(id)), 20_000);
      await sleep(300);
      const tally = appTally(a);
      assert.deepEqual(tally.missing(ids), []);
      assert.deepEqual(tally.duplicates(), [], 'a clean drain acks what it finished: no duplicates');
      assert.equal(await second.stop('SIGTERM'), 0);
      assert.equal(await rabbit.ready(q), 0);
      assert.equal(await rabbit.ready(dlq), 0);
    } finally {
      release();
    }
  });

  test('SIGTERM whose drain deadline passes: unfinished work goes back unacked and is redelivered to the next turnout', async (t: TestContext) => {
    const release = await rabbitShared();
    try {
      const q = await rabbit.queue('classic', 'deadline');
      const dlq = await rabbit.queue('classic', 'deadline-dlq');
      const producer = new RetryingProducer();
      const ids = Array.from({ length: 10 }, () => randomUUID());
      for (const [n, id] of ids.entries()) await producer.publish(q, id, body(n));
      await producer.close();
      let slow = true;
      const a = await app(() => ({ status: 200, delayMs: slow ? 4000 : 5 }));
      const env = { TURNOUT_SOURCE: q, TURNOUT_APP_URL: a.url, TURNOUT_DLQ: dlq, TURNOUT_CONCURRENCY: '3', TURNOUT_DRAIN_TIMEOUT: '500' };
      const first = await start(env);
      await waitFor('three in flight', () => a.active() === 3, 10_000);
      const cut = a.deliveries.map((d) => d.id);
      assert.equal(await first.stop('SIGTERM'), 1, 'exit 1: the drain was not clean');
      slow = false;
      const second = await start(env);
      await waitFor('every message delivered', () => ids.every((id) => a.accepted.has(id)), 20_000);
      await sleep(300);
      const tally = appTally(a);
      assert.deepEqual(tally.missing(ids), []);
      t.diagnostic(`drain deadline: ${cut.length} cut short and redelivered; duplicates ${tally.duplicates().length}`);
      for (const id of cut) assert.deepEqual(tally.placesOf(id), { delivered: 1, redelivered: 1 }, `cut-short ${id} came back flagged redelivered`);
      assert.deepEqual(tally.duplicates().sort(), [...cut].sort(), 'only the cut-short ones came twice');
      assert.equal(await second.stop('SIGTERM'), 0);
      assert.equal(await rabbit.ready(q), 0);
      assert.equal(await rabbit.ready(dlq), 0);
    } finally {
      release();
    }
  });
});
