// turnout rollout against real RabbitMQ, a real Prometheus and real turnout
// processes: a healthy green is promoted to 100, a failing green is rolled
// back within failureLimit + 1 judged steps; every message is processed
// exactly once (blue or green), none lost, none twice.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startController } from '../../support/controller.ts';
import { startPrometheus, waitForTargets, type TestPrometheus } from '../../support/prometheus.ts';
import { rabbitShared } from '../amqp/lock.ts';
import { ADMIN_TOKEN, routerWeights, startFleet, type Fleet } from './fleet.ts';
import { writePlan } from './plans.ts';

describe('rollout judged through Prometheus', () => {
  let release: () => void = () => {};
  before(async () => {
    release = await rabbitShared();
  });
  after(() => release());

  test('a healthy green is promoted to 100 across two router replicas; every message processed exactly once', async () => {
    const fleet: Fleet = await startFleet('healthy', { routers: 2 });
    let prom: TestPrometheus | undefined;
    try {
      prom = await startPrometheus(fleet.targets());
      await waitForTargets(prom, 4);
      const producer = fleet.produce(80);
      const plan = writePlan({ routers: fleet.routerUrls, steps: [20, 50, 100], interval: '3s', prometheus: prom.url, greenSource: fleet.queues.green });
      const ctl = await startController([plan], { TURNOUT_ADMIN_TOKEN: ADMIN_TOKEN });
      const code = await ctl.exited;
      const ids = await producer.stop();
      assert.equal(code, 0, ctl.output());
      assert.deepEqual(await routerWeights(fleet), [100, 100]);
      const passed = ctl.logs().filter((l) => l.event === 'passed').map((l) => l.weight);
      assert.deepEqual(passed, [20, 50, 100], 'each step judged and passed once, in order');
      assert.ok(ctl.logs().some((l) => l.event === 'promoted'));
      const { blue, green } = await fleet.account(ids);
      assert.ok(green > 0 && blue > 0, `both sides took traffic (blue ${blue}, green ${green})`);
    } finally {
      await prom?.close();
      await fleet.close();
    }
  });

  test('a failing green (30 % of keys) is rolled back within failureLimit + 1 judged steps; its failures fall back to blue', async () => {
    const fleet = await startFleet('failing', { routers: 1, greenFails: (n) => n % 10 < 3 });
    let prom: TestPrometheus | undefined;
    try {
      prom = await startPrometheus(fleet.targets());
      await waitForTargets(prom, 3);
      const producer = fleet.produce(80);
      const plan = writePlan({ routers: fleet.routerUrls, steps: [30, 60, 100], interval: '3s', prometheus: prom.url, failureLimit: 1, greenSource: fleet.queues.green });
      const ctl = await startController([plan], { TURNOUT_ADMIN_TOKEN: ADMIN_TOKEN });
      const code = await ctl.exited;
      const ids = await producer.stop();
      assert.equal(code, 1, ctl.output());
      assert.deepEqual(await routerWeights(fleet), [0]);
      const judged = ctl.logs().filter((l) => ['passed', 'failed', 'rolled-back'].includes(String(l.event)));
      assert.ok(judged.length <= 2, `at most failureLimit + 1 = 2 judgements: ${judged.map((l) => l.event).join(', ')}`);
      assert.equal(judged.at(-1)?.event, 'rolled-back');
      const steps = ctl.logs().filter((l) => l.event === 'step').map((l) => l.weight);
      assert.ok(steps.every((w) => w === 30), `never raised past the failing step: ${steps.join(', ')}`);
      const rolled = ctl.logs().find((l) => l.event === 'rolled-back');
      assert.match(String(rolled?.msg), /green-fallbacks [\d.]+ > max 0\.05/, 'the log names the check, its value and its bound');
      const { blue, green } = await fleet.account(ids);
      assert.ok(blue > 0 && green > 0, `blue ${blue}, green ${green}`);
      // The green app failed some deliveries; each of those messages was then processed by blue.
      assert.ok(fleet.greenApp.deliveries.some((d) => !fleet.greenApp.accepted.has(d.id) && fleet.blueApp.accepted.has(d.id)));
    } finally {
      await prom?.close();
      await fleet.close();
    }
  });
});
