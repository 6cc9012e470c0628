// Every invalid plan of the contract's list is refused, naming the key and
// what is allowed; a valid plan parses to what the controller uses.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseDuration, parsePlan, PlanError } from '../../../src/rollout/plan.ts';

const VALID = `
routers: ["http://127.0.0.1:8787", "dns+http://turnout-router:8787"]
weightFile: /tmp/w
steps: [1, 5, 10, 25, 50, 100]
interval: 5m
analysis:
  prometheus: http://prometheus:9090
  scrape: ["dns+http://orders-green:8787"]
  failureLimit: 1
  noData: fail
  checks:
    - name: green-fallbacks
      metric: dead-letter-ratio
      sources: [orders.green]
      max: 0.01
    - name: app-errors
      query: 'sum(rate(app_errors_total{color="green"}[1m]))'
      max: 0.5
stateFile: /var/lib/turnout/rollout.json
`;

test('the contract example parses', () => {
  const p = parsePlan(VALID);
  assert.deepEqual(p.steps, [1, 5, 10, 25, 50, 100]);
  assert.equal(p.intervalMs, 300_000);
  assert.equal(p.analysis.failureLimit, 1);
  assert.equal(p.analysis.noData, 'fail');
  assert.equal(p.analysis.checks.length, 2);
  assert.deepEqual(p.analysis.checks[0], { name: 'green-fallbacks', metric: 'dead-letter-ratio', sources: ['orders.green'], max: 0.01 });
  assert.equal(p.routers[1], 'dns+http://turnout-router:8787');
  // defaults
  const q = parsePlan('routers: ["http://r:1"]\nsteps: [100]\ninterval: 30s\n');
  assert.equal(q.analysis.noData, 'pause');
  assert.equal(q.analysis.failureLimit, 0);
});

test('durations', () => {
  assert.equal(parseDuration('500ms'), 500);
  assert.equal(parseDuration('30s'), 30_000);
  assert.equal(parseDuration('1.5s'), 1500);
  assert.equal(parseDuration('1h'), 3_600_000);
  for (const bad of ['5', '5 minutes', '0s', '-1s', 'm', '1d']) assert.equal(parseDuration(bad), undefined, bad);
});

const mutate = (from: string, to: string): string => {
  assert.ok(VALID.includes(from), from);
  return VALID.replace(from, to);
};

const INVALID: { what: string; plan: string; key: string; says: RegExp }[] = [
  { what: 'unknown top-level key', plan: `${VALID}\nretries: 3\n`, key: 'retries', says: /unknown key; allowed: routers, weightFile, steps, interval, analysis, stateFile/ },
  { what: 'unknown analysis key', plan: mutate('  failureLimit: 1', '  failureLimit: 1\n  failurelimit: 2'), key: 'analysis.failurelimit', says: /unknown key; allowed: .*failureLimit/ },
  { what: 'unknown check key', plan: mutate('      max: 0.01', '      maximum: 0.01'), key: 'analysis.checks[0].maximum', says: /allowed: name, metric, query, sources, min, max/ },
  { what: 'step above 100', plan: mutate('[1, 5, 10, 25, 50, 100]', '[1, 5, 150]'), key: 'steps[2]', says: /from 0 to 100/ },
  { what: 'negative step', plan: mutate('[1, 5, 10, 25, 50, 100]', '[-1, 100]'), key: 'steps[0]', says: /from 0 to 100/ },
  { what: 'steps not rising', plan: mutate('[1, 5, 10, 25, 50, 100]', '[1, 10, 5, 100]'), key: 'steps[2]', says: /above the step before/ },
  { what: 'steps repeating', plan: mutate('[1, 5, 10, 25, 50, 100]', '[10, 10, 100]'), key: 'steps[1]', says: /above the step before/ },
  { what: 'a step that is not a number', plan: mutate('[1, 5, 10, 25, 50, 100]', '[1, "ten", 100]'), key: 'steps[1]', says: /from 0 to 100/ },
  { what: 'interval that does not parse', plan: mutate('interval: 5m', 'interval: 5 minutes'), key: 'interval', says: /500ms, 30s, 5m or 1h/ },
  { what: 'interval as a bare number', plan: mutate('interval: 5m', 'interval: 300'), key: 'interval', says: /500ms, 30s, 5m or 1h/ },
  { what: 'a check with neither metric nor query', plan: mutate('      metric: dead-letter-ratio\n', ''), key: 'analysis.checks[0]', says: /needs a metric \(dead-letter-ratio \| defer-ratio \| delivery-p99\) or a query/ },
  { what: 'an unknown built-in', plan: mutate('metric: dead-letter-ratio', 'metric: error-rate'), key: 'analysis.checks[0].metric', says: /dead-letter-ratio, defer-ratio, delivery-p99/ },
  { what: 'a query without prometheus', plan: mutate('  prometheus: http://prometheus:9090\n', ''), key: 'analysis.checks[1].query', says: /needs analysis\.prometheus/ },
  { what: 'noData not one of the three', plan: mutate('noData: fail', 'noData: ignore'), key: 'analysis.noData', says: /pause, fail, pass/ },
  { what: 'failureLimit negative', plan: mutate('failureLimit: 1', 'failureLimit: -1'), key: 'analysis.failureLimit', says: /whole number/ },
  { what: 'a router that is not a URL', plan: mutate('"http://127.0.0.1:8787"', '"router-0:8787"'), key: 'routers[0]', says: /dns\+http:\/\/name:port/ },
  { what: 'no routers', plan: mutate('routers: ["http://127.0.0.1:8787", "dns+http://turnout-router:8787"]', 'routers: []'), key: 'routers', says: /non-empty list/ },
  { what: 'a check without a bound', plan: mutate('      max: 0.5\n', ''), key: 'analysis.checks[1]', says: /min, max or both/ },
  { what: 'two checks of one name', plan: mutate('name: app-errors', 'name: green-fallbacks'), key: 'analysis.checks[1].name', says: /used twice/ },
];

for (const c of INVALID) {
  test(`invalid plan: ${c.what} names ${c.key}`, () => {
    assert.throws(() => parsePlan(c.plan), (err: unknown) => {
      assert.ok(err instanceof PlanError, String(err));
      assert.equal(err.key, c.key);
      assert.match(err.message, c.says);
      return true;
    });
  });
}
