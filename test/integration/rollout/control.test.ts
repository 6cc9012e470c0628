// turnout rollout controlled: a router replica going away mid-rollout, the
// controller SIGKILLed and restarted, and pause/resume/promote/abort over
// HTTP and the CLI — against real RabbitMQ and real turnout processes,
// judged by scraping green's sidecar. Each test accounts for every message.

import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startController, type RolloutStatus } from '../../support/controller.ts';
import { runTurnout } from '../../support/process.ts';
import { sleep, waitFor } from '../../support/wait.ts';
import { rabbitShared } from '../amqp/lock.ts';
import { ADMIN_TOKEN, routerWeights, startFleet, type Fleet } from './fleet.ts';
import { events, exitOf, RATE, setWeights, TOKEN_ENV } from './helpers.ts';
import { writePlan, type PlanSpec } from './plans.ts';

describe('turnout rollout control: real RabbitMQ and turnout processes', () => {
  let release: () => void = () => {};
  let fleet: Fleet;
  let dir = '';
  const plan = (p: Omit<PlanSpec, 'routers' | 'greenSource'>): string => writePlan({ routers: fleet.routerUrls, greenSource: fleet.queues.green, ...p }, dir);

  before(async () => {
    release = await rabbitShared();
    dir = mkdtempSync(join(tmpdir(), 'turnout-rollout-'));
    fleet = await startFleet('control', { routers: 2 });
  });
  after(async () => {
    await fleet?.close();
    rmSync(dir, { recursive: true, force: true });
    release();
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
    const code = await exitOf(ctl);
    const ids = await producer.stop();
    assert.equal(code, 0, ctl.output());
    assert.ok(ctl.logs().some((l) => l.event === 'hold' && JSON.stringify(l.routers).includes(downUrl)), 'the hold is logged');
    assert.ok(events(ctl, 'routers-confirmed').length >= 1);
    assert.deepEqual(await routerWeights(fleet), [100, 100]);
    assert.deepEqual([...new Set(events(ctl, 'passed').map((l) => l.weight))], [50, 100]);
    await fleet.account(ids);
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
    assert.equal(await exitOf(second), 0, second.output());
    assert.match(String(events(second, 'resumed')[0]?.msg), /resumed at step 2 \(50%\)/);
    assert.equal(events(second, 'step')[0]?.weight, 50, 'the first weight after the restart is the step it was in');
    assert.deepEqual(events(second, 'passed').map((l) => l.weight), [50, 100], 'step 2 judged afresh, then step 3');
    assert.equal(readFileSync(weightFile, 'utf8').trim(), '100');

    // Promoted: a restart does not start it again (the weight someone set since stays).
    await setWeights(fleet, 0);
    const third = await startController([file], TOKEN_ENV);
    assert.equal(await exitOf(third), 0, third.output());
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
      // Both leave it paused, so they run side by side.
      const [status, denied] = await Promise.all([
        runTurnout(['rollout', 'status', '--controller', ctl.baseUrl]),
        runTurnout(['rollout', 'resume', '--controller', ctl.baseUrl], { TURNOUT_ADMIN_TOKEN: 'not-the-token' }),
      ]);
      assert.equal(status.code, 0, status.stderr);
      assert.equal((JSON.parse(status.stdout) as { phase: string }).phase, 'paused');
      assert.equal(denied.code, 1, 'a wrong token is refused');
      assert.match(denied.stderr, /^401 /);
      const resumed = await runTurnout(['rollout', 'resume', '--controller', ctl.baseUrl], TOKEN_ENV);
      assert.equal(resumed.code, 0, resumed.stderr);
      assert.notEqual((await ctl.status()).phase, 'paused');
      await waitFor('a step to pass after resume', () => events(ctl, 'passed').length > passed, 30_000);
      assert.equal((await fetch(`${ctl.baseUrl}/v1/rollout/promote`, { method: 'POST', headers: auth })).status, 202);
      assert.equal(await exitOf(ctl), 0, ctl.output());
      assert.deepEqual(await routerWeights(fleet), [100, 100]);
      assert.ok(events(ctl, 'promoted').some((l) => /by hand/.test(String(l.msg))));

      const ab = await startController([plan({ steps: [10, 50, 100], interval: '60s', scrape: [fleet.green.baseUrl] })], TOKEN_ENV);
      await waitFor('step 1', () => events(ab, 'step').length > 0, 20_000);
      const aborted = await runTurnout(['rollout', 'abort', '--controller', ab.baseUrl], TOKEN_ENV);
      assert.equal(aborted.code, 0, aborted.stderr);
      assert.equal(await exitOf(ab), 1, ab.output());
      assert.equal(events(ab, 'aborted').length, 1);
      assert.deepEqual(await routerWeights(fleet), [0, 0]);
    } finally {
      await fleet.account(await producer.stop());
    }
  });
});
