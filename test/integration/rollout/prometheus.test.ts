// turnout rollout judged through a real Prometheus, against real RabbitMQ and
// real turnout processes (two router replicas, a blue and a green consumer,
// real HTTP apps): promoted, rolled back, Prometheus going away mid-rollout,
// and the same verdicts through Prometheus as by scraping. One fleet and one
// Prometheus serve the tests in order; each test accounts for every message
// it produced: processed exactly once, by blue or green, nothing
// dead-lettered, nothing left in a queue.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { PrometheusProvider } from '../../../src/rollout/prometheus.ts';
import { ScrapeProvider } from '../../../src/rollout/scrape.ts';
import { verdict } from '../../../src/rollout/judge.ts';
import type { Check } from '../../../src/rollout/plan.ts';
import { startController, type RolloutStatus } from '../../support/controller.ts';
import { runTurnout } from '../../support/process.ts';
import { startPrometheus, waitForTargets, type TestPrometheus } from '../../support/prometheus.ts';
import { sleep, waitFor } from '../../support/wait.ts';
import { rabbitShared } from '../amqp/lock.ts';
import { ADMIN_TOKEN, routerWeights, startFleet, type Fleet } from './fleet.ts';
import { events, exitOf, failing30, judgements, RATE, setWeights, TOKEN_ENV } from './helpers.ts';
import { writePlan, type PlanSpec } from './plans.ts';

describe('turnout rollout through Prometheus: real RabbitMQ, Prometheus and turnout processes', () => {
  let release: () => void = () => {};
  let fleet: Fleet;
  let prom: TestPrometheus;
  let dir = '';
  const plan = (p: Omit<PlanSpec, 'routers' | 'greenSource'>): string => writePlan({ routers: fleet.routerUrls, greenSource: fleet.queues.green, ...p }, dir);

  before(async () => {
    release = await rabbitShared();
    dir = mkdtempSync(join(tmpdir(), 'turnout-rollout-'));
    fleet = await startFleet('prom', { routers: 2 });
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
    // A query check too: validated at start (it parses), then judged at every step.
    const ctl = await startController([plan({ steps: [20, 50, 100], interval: '2s', prometheus: prom.url, extraChecks: "    - name: targets-up\n      query: 'count(up == 1)'\n      min: 4" })], TOKEN_ENV);
    const code = await exitOf(ctl);
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
    const code = await exitOf(ctl);
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

  test('a query Prometheus cannot parse: exit 2 before any weight is set, naming the check', async () => {
    await setWeights(fleet, 0);
    const broken = plan({ steps: [50, 100], interval: '2s', prometheus: prom.url, extraChecks: "    - name: app-errors\n      query: 'sum(rate(app_errors_total[1m]'\n      max: 1" });
    const r = await runTurnout(['rollout', broken], { ...TOKEN_ENV, TURNOUT_PORT: '0' }, 30_000);
    assert.equal(r.code, 2, r.stdout + r.stderr);
    assert.match(r.stderr, /invalid rollout plan .*: analysis\.checks\[2\]\.query: Prometheus rejects it: .*parse error/);
    assert.deepEqual(await routerWeights(fleet), [0, 0], 'no router was touched');
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
      assert.equal(await exitOf(ctl), 0, ctl.output());
      assert.deepEqual(await routerWeights(fleet), [100, 100]);
      assert.deepEqual([...new Set(events(ctl, 'passed').map((l) => l.weight))], [50, 100]);

      const failing = await startController([plan({ steps: [50, 100], interval: '2s', prometheus: prom.url, noData: 'fail' })], TOKEN_ENV);
      await waitFor('a step to start', () => events(failing, 'step').length > 0, 20_000);
      await prom.stop();
      assert.equal(await exitOf(failing), 1, failing.output());
      assert.match(String(events(failing, 'rolled-back')[0]?.msg), /no data \(Prometheus .*unreachable/);
      assert.deepEqual(await routerWeights(fleet), [0, 0]);
    } finally {
      await prom.start().catch(() => {});
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
