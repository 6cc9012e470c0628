// The process and Node.js metrics (src/process-metrics.ts): the same series
// prom-client's collectDefaultMetrics() registers, and every GC counted.

import assert from 'node:assert/strict';
import { PerformanceObserver } from 'node:perf_hooks';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import v8 from 'node:v8';
import vm from 'node:vm';
import { Registry, collectDefaultMetrics, type MetricValueWithName } from 'prom-client';
import { collectProcessMetrics, GC_METRIC, PROM_CLIENT_COLLECTORS } from '../../src/process-metrics.ts';

// A real gc() in this process, without starting the test runner with --expose-gc.
v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

const shape = (r: Registry) =>
  r.getMetricsAsArray().map((m) => ({ name: m.name, help: m.help, type: String(m.type), labels: [...((m as unknown as { labelNames?: string[] }).labelNames ?? [])] }));

/** The histogram's _count series (prom-client's types leave out the series name of a histogram's values). */
async function gcCounts(r: Registry): Promise<{ labels: Record<string, unknown>; value: number }[]> {
  const m = await r.getSingleMetric(GC_METRIC)?.get();
  return ((m?.values ?? []) as (MetricValueWithName<string>)[]).filter((v) => v.metricName === `${GC_METRIC}_count`);
}

const gcCount = async (r: Registry): Promise<number> => (await gcCounts(r)).reduce((s, v) => s + v.value, 0);

test('the collectors are prom-client\'s default ones but its GC observer (a new one in prom-client fails this)', () => {
  assert.deepEqual(Object.keys(PROM_CLIENT_COLLECTORS).sort(), collectDefaultMetrics.metricsList.filter((n) => n !== 'gc').sort());
});

test('the same metrics, help texts, types and labels as collectDefaultMetrics() registers', (t) => {
  const ours = new Registry();
  const p = collectProcessMetrics(ours);
  t.after(() => p.stop());
  const theirs = new Registry();
  collectDefaultMetrics({ register: theirs });
  assert.deepEqual(shape(ours).sort((a, b) => a.name.localeCompare(b.name)), shape(theirs).sort((a, b) => a.name.localeCompare(b.name)));
  assert.ok(shape(ours).some((m) => m.name === GC_METRIC));
});

test('every GC of a batch is counted: three in one turn of the event loop count three', async (t) => {
  const ours = new Registry();
  const p = collectProcessMetrics(ours);
  t.after(() => p.stop());
  // prom-client's own collector beside it, to show what this module is for.
  const theirs = new Registry();
  collectDefaultMetrics({ register: theirs });
  const batches: number[] = [];
  const witness = new PerformanceObserver((list) => batches.push(list.getEntries().length));
  witness.observe({ entryTypes: ['gc'] });
  t.after(() => witness.disconnect());

  gc();
  gc();
  gc();
  await sleep(50);

  const seen = batches.reduce((s, n) => s + n, 0);
  assert.ok(batches.some((n) => n >= 3), `the three GCs arrived in one batch (batches: ${batches.join(', ')})`);
  assert.equal(await gcCount(ours), seen, 'turnout counts every GC entry Node reported');
  assert.equal(await gcCount(theirs), batches.length,
    'prom-client counts one GC per batch; if it now counts them all, src/process-metrics.ts can go back to collectDefaultMetrics()');
  assert.ok((await gcCounts(ours)).some((v) => v.labels.kind === 'major' && v.value >= 3), 'the three are major GCs');
});

test('stop() ends the GC observation', async () => {
  const ours = new Registry();
  collectProcessMetrics(ours).stop();
  gc();
  await sleep(20);
  assert.equal(await gcCount(ours), 0);
});

test('the rollout controller registers the same process metrics, and its stop() ends the GC observation', async () => {
  const { RolloutMetrics } = await import('../../src/rollout/metrics.ts');
  const r = new Registry();
  const m = new RolloutMetrics(r, []);
  m.stop();
  const names = shape(r).map((x) => x.name);
  for (const n of [GC_METRIC, 'process_cpu_seconds_total', 'nodejs_eventloop_lag_p99_seconds']) assert.ok(names.includes(n), `the controller registers ${n}`);
  gc();
  await sleep(20);
  assert.equal(await gcCount(r), 0);
});
