// turnout rollout against real RabbitMQ, a real Prometheus and real turnout
// processes (two router replicas, a blue and a green consumer, real HTTP
// apps). One fleet and one Prometheus serve the tests in order; each test
// accounts for every message it produced: processed exactly once, by blue
// or green, nothing dead-lettered, nothing left in a queue.

import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { PrometheusProvider } from '../../../src/rollout/prometheus.ts';
import { ScrapeProvider } from '../../../src/rollout/scrape.ts';
import { verdict } from '../../../src/rollout/judge.ts';
import type { Check } from '../../../src/rollout/plan.ts';
import { startController, type ControllerProcess, type RolloutStatus } from '../../support/controller.ts';
import { runTurnout } from '../../support/process.ts';
import { startPrometheus, waitForTargets, type TestPrometheus } from '../../support/prometheus.ts';
import { sleep, waitFor } from '../../support/wait.ts';
import { rabbitShared } from '../amqp/lock.ts';
import { ADMIN_TOKEN, routerWeights, startFleet, type Fleet } from './fleet.ts';
import { writePlan, type PlanSpec } from './plans.ts';

const TOKEN_ENV = { TURNOUT_ADMIN_TOKEN: ADMIN_TOKEN };
const RATE = 60;
const failing30 = (n: number): boolean => n % 10 < 3;

const events = (c: ControllerProcess, name: string): Record<string, unknown>[] => c.logs().filter((l) => l.event === name);
const judgements = (c: ControllerProcess): Record<string, unknown>[] => c.logs().filter((l) => ['passed', 'failed', 'rolled-back'].includes(String(l.event)) && l.msg !== undefined && !/^rolled-back: .*by hand/.test(String(l.msg)));

async function setWeights(fleet: Fleet, weight: number): Promise<void> {
  for (const u of fleet.routerUrls) {
    const res = await fetch(`${u}/v1/routes/green-weight`, { method: 'PUT', headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' }, body: JSON.stringify({ weight }) });
    assert.equal(res.status, 200);
  }
}

describe('turnout rollout: real RabbitMQ, Prometheus and turnout processes', () => {
  let release: () => void = () => {};
  let fleet: Fleet;
  let prom: TestPrometheus;
  let dir = '';
  const plan = (p: Omit<PlanSpec, 'routers' | 'greenSource'>): string => writePlan({ routers: fleet.routerUrls, greenSource: fleet.queues.green, ...p }, dir);

  before(async () => {
    release = await rabbitShared();
    dir = mkdtempSync(join(tmpdir(), 'turnout-rollout-'));
    fleet = await startFleet('story', { routers: 2 });
    prom = await startPrometheus(fleet.targets());
    await waitForTargets(prom, 4);
  });
  after(async () => {
    await prom?.close();
    await fleet?.close();
    rmSync(dir, { recursive: true, force: true });
    release();
  });

  test('a healthy green is promoted to 100 on both routers, each step judged through Prometheus once, in order', async () => {
    fleet.setGreenFails(undefined);
    const producer = fleet.produce(RATE);
    const ctl = await startController([plan({ steps: [20, 50, 100], interval: '2s', prometheus: prom.url })], TOKEN_ENV);
    const code = await ctl.exited;
    const ids = await producer.stop();
    assert.equal(code, 0, ctl.output());
    assert.deepEqual(await routerWeights(fleet), [100, 100]);
    // A no-data pause at the first step (Prometheus had not two samples yet) would be judged again; the passes are what count.
    assert.deepEqual(events(ctl, 'passed').map((l) => l.weight), [20, 50, 100]);
    assert.equal(events(ctl, 'promoted').length, 1);
    const { blue, green } = await fleet.account(ids);
    assert.ok(green > 0 && blue > 0, `both sides took traffic (blue ${blue}, green ${green})`);
  });

  test('a failing green (30 % of keys) is rolled back within failureLimit + 1 judged steps; nothing lost or duplicated', async () => {
    fleet.setGreenFails(failing30);
    const producer = fleet.produce(RATE);
    const ctl = await startController([plan({ steps: [30, 60, 100], interval: '2s', prometheus: prom.url, failureLimit: 1 })], TOKEN_ENV);
    const code = await ctl.exited;
    const ids = await producer.stop();
    assert.equal(code, 1, ctl.output());
    assert.deepEqual(await routerWeights(fleet), [0, 0]);
    const judged = judgements(ctl);
    assert.ok(judged.length <= 2, `at most failureLimit + 1 = 2 judgements: ${judged.map((l) => `${String(l.event)}: ${String(l.msg)}`).join('\n')}`);
    assert.equal(judged.at(-1)?.event, 'rolled-back');
    assert.deepEqual([...new Set(events(ctl, 'step').map((l) => l.weight))], [30], 'never raised past the failing step');
    assert.match(String(events(ctl, 'rolled-back')[0]?.msg), /green-fallbacks [\d.]+ > max 0\.05/, 'the log names the check, its value and its bound');
    const { blue, green } = await fleet.account(ids);
    assert.ok(blue > 0 && green > 0, `blue ${blue}, green ${green}`);
    // Green's failed deliveries fell back to blue, each processed there once.
    const fellBack = fleet.greenApp.deliveries.filter((d) => ids.includes(d.id) && !fleet.greenApp.accepted.has(d.id)).map((d) => d.id);
    assert.ok(fellBack.length > 0 && fellBack.every((id) => fleet.blueApp.accepted.get(id)?.length === 1));
    fleet.setGreenFails(undefined);
  });

  test('one of two router replicas stopped mid-rollout: the rollout holds (visible in GET /v1/rollout) until it is back', async () => {
    const producer = fleet.produce(RATE);
    const ctl = await startController([plan({ steps: [50, 100], interval: '2s', scrape: [fleet.green.baseUrl] })], TOKEN_ENV);
    await waitFor('step 1', () => events(ctl, 'step').length > 0, 20_000);
    const downUrl = fleet.routerUrls[1] as string;
    await fleet.stopRouter(1);
    const held = (await waitFor('the rollout to hold', async () => {
      const s = await ctl.status();
      return s.held?.includes(downUrl) ? s : undefined;
    }, 15_000, 100)) as RolloutStatus;
    assert.equal(held.phase, 'progressing');
    const passedBefore = events(ctl, 'passed').length;
    await sleep(2500); // longer than an interval: nothing is judged while a router is missing
    assert.equal(events(ctl, 'passed').length, passedBefore, 'no step judged while a router is down');
    assert.ok((await ctl.status()).held?.includes(downUrl));
    assert.ok(events(ctl, 'passed').every((l) => l.weight === 50), 'not past step 1 while held');
    await fleet.startRouter(1);
    const code = await ctl.exited;
    const ids = await producer.stop();
    assert.equal(code, 0, ctl.output());
    assert.ok(ctl.logs().some((l) => l.event === 'hold' && JSON.stringify(l.routers).includes(downUrl)), 'the hold is logged');
    assert.ok(events(ctl, 'routers-confirmed').length >= 1);
    assert.deepEqual(await routerWeights(fleet), [100, 100]);
    assert.deepEqual([...new Set(events(ctl, 'passed').map((l) => l.weight))], [50, 100]);
    await fleet.account(ids);
  });

  test('Prometheus stopped mid-rollout: noData pause holds the weight and says why, and goes on when data is back; noData fail rolls back', async () => {
    const producer = fleet.produce(RATE);
    try {
      const ctl = await startController([plan({ steps: [50, 100], interval: '2s', prometheus: prom.url, noData: 'pause' })], TOKEN_ENV);
      await waitFor('step 1 to pass', () => events(ctl, 'passed').length > 0, 20_000);
      await prom.stop();
      const paused = (await waitFor('a no-data pause', async () => {
        const s = await ctl.status();
        return s.phase === 'paused' ? s : undefined;
      }, 15_000, 100)) as RolloutStatus;
      assert.match(String(paused.reason), /no data: .*Prometheus .*unreachable/);
      const weight = paused.weight;
      await sleep(3000);
      const still = await ctl.status();
      assert.equal(still.phase, 'paused');
      assert.equal(still.weight, weight, 'the weight is held');
      assert.deepEqual(await routerWeights(fleet), [weight, weight]);
      await prom.start();
      assert.equal(await ctl.exited, 0, ctl.output());
      assert.deepEqual(await routerWeights(fleet), [100, 100]);
      assert.deepEqual([...new Set(events(ctl, 'passed').map((l) => l.weight))], [50, 100]);

      const failing = await startController([plan({ steps: [50, 100], interval: '2s', prometheus: prom.url, noData: 'fail' })], TOKEN_ENV);
      await waitFor('a step to start', () => events(failing, 'step').length > 0, 20_000);
      await prom.stop();
      assert.equal(await failing.exited, 1, failing.output());
      assert.match(String(events(failing, 'rolled-back')[0]?.msg), /no data \(Prometheus .*unreachable/);
      assert.deepEqual(await routerWeights(fleet), [0, 0]);
    } finally {
      await prom.start().catch(() => {});
      await fleet.account(await producer.stop());
    }
  });

  test('the controller SIGKILLed mid-step and restarted resumes at that step, judges it afresh, and never skips a judgement; an ended rollout is not restarted', async () => {
    const producer = fleet.produce(RATE);
    let stopped = false;
    const stopProducer = async (): Promise<string[]> => {
      stopped = true;
      return producer.stop();
    };
    try {
    const stateFile = join(dir, 'state.json');
    const weightFile = join(dir, 'weight');
    const file = plan({ steps: [20, 50, 100], interval: '2s', scrape: [fleet.green.baseUrl], stateFile, weightFile });
    const first = await startController([file], TOKEN_ENV);
    await waitFor('step 2 to start', () => events(first, 'step').some((l) => l.weight === 50), 30_000);
    await sleep(700); // mid-interval
    assert.equal(await first.kill('SIGKILL'), 'SIGKILL');
    const saved = JSON.parse(readFileSync(stateFile, 'utf8')) as { status: { step: number; weight: number; phase: string } };
    assert.deepEqual([saved.status.step, saved.status.weight, saved.status.phase], [2, 50, 'progressing']);
    assert.equal(readFileSync(weightFile, 'utf8').trim(), '50');
    assert.deepEqual(events(first, 'passed').map((l) => l.weight), [20]);

    const second = await startController([file], TOKEN_ENV);
    assert.equal(await second.exited, 0, second.output());
    assert.match(String(events(second, 'resumed')[0]?.msg), /resumed at step 2 \(50%\)/);
    assert.equal(events(second, 'step')[0]?.weight, 50, 'the first weight after the restart is the step it was in');
    assert.deepEqual(events(second, 'passed').map((l) => l.weight), [50, 100], 'step 2 judged afresh, then step 3');
    assert.equal(readFileSync(weightFile, 'utf8').trim(), '100');

    // Promoted: a restart does not start it again (the weight someone set since stays).
    await setWeights(fleet, 0);
    const third = await startController([file], TOKEN_ENV);
    assert.equal(await third.exited, 0, third.output());
    assert.ok(events(third, 'ended').length === 1 && events(third, 'step').length === 0);
    assert.deepEqual(await routerWeights(fleet), [0, 0]);
    await fleet.account(await stopProducer());
    } finally {
      if (!stopped) await producer.stop();
    }
  });

  test('pause, resume, promote and abort over HTTP and the CLI', async () => {
    const producer = fleet.produce(RATE);
    const auth = { authorization: `Bearer ${ADMIN_TOKEN}` };
    try {
      const ctl = await startController([plan({ steps: [10, 50, 100], interval: '3s', scrape: [fleet.green.baseUrl] })], TOKEN_ENV);
      await waitFor('step 1', () => events(ctl, 'step').length > 0, 20_000);
      assert.equal((await fetch(`${ctl.baseUrl}/v1/rollout/pause`, { method: 'POST' })).status, 401);
      assert.equal((await fetch(`${ctl.baseUrl}/v1/rollout/pause`, { method: 'POST', headers: { authorization: 'Bearer wrong-token-xxxxxx' } })).status, 401);
      assert.equal((await fetch(`${ctl.baseUrl}/v1/rollout/pause`, { method: 'POST', headers: auth })).status, 202);
      const s = await ctl.status();
      assert.equal(s.phase, 'paused');
      const passed = events(ctl, 'passed').length;
      await sleep(3500);
      assert.equal(events(ctl, 'passed').length, passed, 'nothing judged while paused');
      assert.equal((await ctl.status()).weight, s.weight);
      const status = await runTurnout(['rollout', 'status', '--controller', ctl.baseUrl]);
      assert.equal(status.code, 0, status.stderr);
      assert.equal((JSON.parse(status.stdout) as { phase: string }).phase, 'paused');
      const denied = await runTurnout(['rollout', 'resume', '--controller', ctl.baseUrl], { TURNOUT_ADMIN_TOKEN: 'not-the-token' });
      assert.equal(denied.code, 1, 'a wrong token is refused');
      assert.match(denied.stderr, /^401 /);
      const resumed = await runTurnout(['rollout', 'resume', '--controller', ctl.baseUrl], TOKEN_ENV);
      assert.equal(resumed.code, 0, resumed.stderr);
      assert.notEqual((await ctl.status()).phase, 'paused');
      await waitFor('a step to pass after resume', () => events(ctl, 'passed').length > passed, 30_000);
      assert.equal((await fetch(`${ctl.baseUrl}/v1/rollout/promote`, { method: 'POST', headers: auth })).status, 202);
      assert.equal(await ctl.exited, 0, ctl.output());
      assert.deepEqual(await routerWeights(fleet), [100, 100]);
      assert.ok(events(ctl, 'promoted').some((l) => /by hand/.test(String(l.msg))));

      const ab = await startController([plan({ steps: [10, 50, 100], interval: '60s', scrape: [fleet.green.baseUrl] })], TOKEN_ENV);
      await waitFor('step 1', () => events(ab, 'step').length > 0, 20_000);
      const aborted = await runTurnout(['rollout', 'abort', '--controller', ab.baseUrl], TOKEN_ENV);
      assert.equal(aborted.code, 0, aborted.stderr);
      assert.equal(await ab.exited, 1, ab.output());
      assert.equal(events(ab, 'aborted').length, 1);
      assert.deepEqual(await routerWeights(fleet), [0, 0]);
    } finally {
      await fleet.account(await producer.stop());
    }
  });

  test('the built-in checks give the same verdicts through Prometheus and through scraping, on the same traffic', async () => {
    const checks: Check[] = [
      { name: 'dlq', metric: 'dead-letter-ratio', sources: [fleet.queues.green], max: 0.05 },
      { name: 'defer', metric: 'defer-ratio', sources: [fleet.queues.green], max: 0.05 },
      { name: 'p99', metric: 'delivery-p99', sources: [fleet.queues.green], max: 1 },
      { name: 'p99-strict', metric: 'delivery-p99', sources: [fleet.queues.green], max: 0.0001 },
    ];
    const scrape = new ScrapeProvider([fleet.green.baseUrl, fleet.blue.baseUrl]);
    const promql = new PrometheusProvider(prom.url);
    await waitForTargets(prom, 4);
    await setWeights(fleet, 50);
    const producer = fleet.produce(RATE);
    try {
      for (const fails of [undefined, failing30]) {
        fleet.setGreenFails(fails);
        await sleep(2000); // every series of this traffic exists before the window opens
        const [ws, wp] = await Promise.all([scrape.open(), promql.open()]);
        await sleep(3000);
        await sleep(1100); // Prometheus has scraped the end of the window
        const [ms, mp] = await Promise.all([ws.measure(checks), wp.measure(checks)]);
        const vs = checks.map((c, i) => verdict(c, ms[i]!));
        const vp = checks.map((c, i) => verdict(c, mp[i]!));
        const show = JSON.stringify({ scrape: ms, prometheus: mp });
        assert.deepEqual(vs, vp, show);
        assert.deepEqual(vs, fails ? ['fail', 'pass', 'pass', 'fail'] : ['pass', 'pass', 'pass', 'fail'], show);
        const dl = (m: (typeof ms)[number]): number => ('value' in m ? m.value : NaN);
        assert.ok(Math.abs(dl(ms[0]!) - dl(mp[0]!)) < 0.1, `dead-letter ratios agree: ${show}`);
      }
    } finally {
      fleet.setGreenFails(undefined);
      await fleet.account(await producer.stop());
    }
  });
});
